/* test_ffi.c: every C ABI function and its error paths. Prints
 * "N passed, N failed" and exits non-zero on any failure.
 * Usage: test_ffi SCRATCH_DIR */
#define _DEFAULT_SOURCE /* realpath, execl */
#include "keyval.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            passed++;                                                                \
        } else {                                                                     \
            failed++;                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, \
                    __LINE__, #cond, kv_last_error_message());                       \
        }                                                                            \
    } while (0)

#define K(s) (const uint8_t *)(s), strlen(s)

static char scratch[4096];

static const char *path_of(const char *name) {
    static char buf[8192];
    snprintf(buf, sizeof buf, "%s/%s", scratch, name);
    return buf;
}

static kv_options small_opts(void) {
    kv_options o = {.struct_size = sizeof o};
    if (kv_options_init(&o) != KV_OK) abort();
    o.segment_size = 64 * 1024;
    return o;
}

static void test_versions_and_strings(void) {
    CHECK(strcmp(kv_version(), KV_VERSION_STRING) == 0);
    CHECK(kv_version_number() == KV_VERSION_NUMBER);
    CHECK(KV_VERSION_NUMBER == KV_VERSION_MAJOR * 10000 + KV_VERSION_MINOR * 100 + KV_VERSION_PATCH);
    for (int s = KV_OK; s <= KV_SNAPSHOT_EXPIRED; s++) {
        const char *m = kv_strerror((kv_status)s);
        CHECK(m != NULL && strlen(m) > 0);
    }
    CHECK(strcmp(kv_strerror(KV_NOT_FOUND), "not found") == 0);
    CHECK(strcmp(kv_strerror(KV_DUPLICATE_KEY), "duplicate key") == 0);
    /* Any integer is accepted: values outside the enum never crash. */
    CHECK(strcmp(kv_strerror(15), "unknown status") == 0);
    CHECK(strcmp(kv_strerror(100), "unknown status") == 0);
    CHECK(strcmp(kv_strerror(-1), "unknown status") == 0);
    CHECK(kv_last_error_message() != NULL);
}

static void test_options_defaults(void) {
    kv_options o = {.struct_size = sizeof o};
    CHECK(kv_options_init(&o) == KV_OK);
    CHECK(o.struct_size == sizeof o);
    CHECK(o.durability == KV_DURABILITY_SYNC);
    CHECK(o.recovery_mode == KV_RECOVERY_TOLERATE_TAIL_CORRUPTION);
    CHECK(o.segment_size == 64u * 1024 * 1024);
    CHECK(o.keep_snapshots == 2);
    CHECK(o.create_if_missing == 1);
    CHECK(o.checkpoint_interval_ms == 0);
}

/* Convention 10, as a program compiled against another version of the
 * header meets it: a newer program passes a larger struct (its extra
 * fields must stay zero in inputs and come back zero in outputs), a
 * struct_size below the first layout is refused, and the library never
 * writes past struct_size. */
static void test_struct_size_rule(void) {
    struct newer_options { kv_options o; uint64_t future_field; };
    struct newer_stats { kv_stats s; uint64_t future_field; uint64_t guard; };
    struct newer_metrics { kv_metrics m; uint64_t future_field; uint64_t guard; };
    struct newer_options no;
    memset(&no, 0xAB, sizeof no);
    no.o.struct_size = sizeof no;
    CHECK(kv_options_init(&no.o) == KV_OK);
    CHECK(no.o.struct_size == sizeof no && no.future_field == 0);
    CHECK(no.o.durability == KV_DURABILITY_SYNC);
    no.o.segment_size = 64 * 1024;
    char p[8192];
    snprintf(p, sizeof p, "%s", path_of("structs"));
    kv_db *db = NULL;
    no.future_field = 1; /* something this library cannot do: refused */
    CHECK(kv_open(p, &no.o, &db) == KV_INVALID_ARGUMENT && db == NULL);
    CHECK(strstr(kv_last_error_message(), "kv_options") != NULL);
    no.future_field = 0;
    CHECK(kv_open(p, &no.o, &db) == KV_OK);
    CHECK(kv_set(db, K("k"), K("v")) == KV_OK);

    struct newer_stats ns;
    memset(&ns, 0xCD, sizeof ns);
    ns.s.struct_size = offsetof(struct newer_stats, guard);
    CHECK(kv_stats_get(db, &ns.s) == KV_OK);
    CHECK(ns.s.struct_size == offsetof(struct newer_stats, guard) && ns.s.keys == 1);
    CHECK(ns.future_field == 0 && ns.guard == 0xCDCDCDCDCDCDCDCDull);
    struct newer_metrics nm;
    memset(&nm, 0xCD, sizeof nm);
    nm.m.struct_size = offsetof(struct newer_metrics, guard);
    CHECK(kv_metrics_get(db, &nm.m) == KV_OK && nm.m.puts == 1);
    CHECK(nm.future_field == 0 && nm.guard == 0xCDCDCDCDCDCDCDCDull);

    /* Too small for any layout: refused, nothing written. */
    kv_stats small;
    memset(&small, 0xEE, sizeof small);
    small.struct_size = sizeof small - 8;
    CHECK(kv_stats_get(db, &small) == KV_INVALID_ARGUMENT);
    CHECK(small.keys == 0xEEEEEEEEEEEEEEEEull);
    kv_stats huge = {.struct_size = (size_t)1 << 40}; /* never initialised, say */
    CHECK(kv_stats_get(db, &huge) == KV_INVALID_ARGUMENT && huge.keys == 0);
    kv_metrics msmall = {.struct_size = 0};
    CHECK(kv_metrics_get(db, &msmall) == KV_INVALID_ARGUMENT);
    kv_options osmall = {.struct_size = 4};
    CHECK(kv_options_init(&osmall) == KV_INVALID_ARGUMENT && osmall.durability == 0);
    CHECK(kv_options_init(NULL) == KV_INVALID_ARGUMENT);
    kv_db *db2 = NULL;
    CHECK(kv_open(p, &osmall, &db2) == KV_INVALID_ARGUMENT && db2 == NULL);
    CHECK(kv_close(db) == KV_OK);
}

/* read_only: a second handle without the lock, beside the writer; it
 * sees what was durable at its open and refuses writes. */
static void test_read_only(void) {
    kv_options o = small_opts();
    kv_db *w = NULL, *r = NULL, *r2 = NULL;
    CHECK(kv_open(path_of("readonly"), &o, &w) == KV_OK);
    CHECK(kv_set(w, K("k"), K("v")) == KV_OK);
    kv_options ro = small_opts();
    ro.read_only = 1;
    CHECK(kv_open(path_of("readonly"), &ro, &r) == KV_OK);
    CHECK(kv_open(path_of("readonly"), &o, &r2) == KV_LOCKED); /* still one writer */
    uint8_t buf[8];
    size_t n = 0;
    CHECK(kv_get_into(r, K("k"), buf, sizeof buf, &n) == KV_OK && n == 1 && buf[0] == 'v');
    CHECK(kv_set(r, K("k"), K("w")) == KV_INVALID_ARGUMENT);
    CHECK(strstr(kv_last_error_message(), "read-only") != NULL);
    CHECK(kv_delete(r, K("k")) == KV_INVALID_ARGUMENT);
    CHECK(kv_checkpoint(r) == KV_INVALID_ARGUMENT);
    CHECK(kv_set(w, K("k2"), K("x")) == KV_OK); /* the writer goes on */
    CHECK(kv_close(r) == KV_OK);
    CHECK(kv_close(w) == KV_OK);
    CHECK(kv_open(path_of("readonly-missing"), &ro, &r) == KV_INVALID_ARGUMENT);
}

/* kv_backup / kv_raft_backup: a copy that opens with the data, the LSN
 * reported, and bad destinations refused. */
static void test_backup(void) {
    kv_options o = small_opts();
    kv_db *db = NULL, *b = NULL;
    char dest[8192];
    CHECK(kv_open(path_of("bk-src"), &o, &db) == KV_OK);
    for (int i = 0; i < 100; i++) {
        char k[32];
        snprintf(k, sizeof k, "k%03d", i);
        CHECK(kv_set(db, K(k), K("value")) == KV_OK);
    }
    uint64_t lsn = 0;
    snprintf(dest, sizeof dest, "%s", path_of("bk-dest"));
    CHECK(kv_backup(db, dest, &lsn) == KV_OK && lsn >= 100);
    CHECK(kv_backup(db, dest, NULL) == KV_INVALID_ARGUMENT); /* exists */
    CHECK(strstr(kv_last_error_message(), "already exists") != NULL);
    CHECK(kv_backup(db, path_of("no/such/dir"), NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_backup(db, NULL, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_backup(NULL, dest, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_open(dest, &o, &b) == KV_OK);
    uint64_t n = 0;
    CHECK(kv_len(b, &n) == KV_OK && n == 100);
    kv_stats st = {.struct_size = sizeof st};
    CHECK(kv_stats_get(b, &st) == KV_OK && st.last_lsn == lsn);
    CHECK(kv_close(b) == KV_OK);
    CHECK(kv_close(db) == KV_OK);

    kv_raft *log = NULL, *lb = NULL;
    CHECK(kv_raft_open(path_of("bk-raft"), &o, &log) == KV_OK);
    kv_raft_entry es[3];
    for (int i = 0; i < 3; i++) {
        es[i].index = (uint64_t)i + 1;
        es[i].term = 1;
        es[i].data = (const uint8_t *)"entry";
        es[i].data_len = 5;
    }
    CHECK(kv_raft_append(log, es, 3) == KV_OK);
    snprintf(dest, sizeof dest, "%s", path_of("bk-raft-dest"));
    CHECK(kv_raft_backup(log, dest, &lsn) == KV_OK && lsn >= 1);
    CHECK(kv_raft_backup(log, dest, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_close(log) == KV_OK);
    CHECK(kv_raft_open(dest, &o, &lb) == KV_OK);
    uint64_t first = 0, last = 0;
    CHECK(kv_raft_bounds(lb, &first, &last) == KV_OK && first == 1 && last == 3);
    CHECK(kv_raft_close(lb) == KV_OK);
}

/* checkpoint_interval_ms: an idle store that was written to is
 * checkpointed by time alone (the WAL-size trigger is off). */
static void test_checkpoint_interval(void) {
    kv_options o = small_opts();
    o.max_wal_size = 0;
    o.checkpoint_interval_ms = 1;
    kv_db *db = NULL;
    CHECK(kv_open(path_of("ticker"), &o, &db) == KV_INVALID_ARGUMENT && db == NULL);
    o.checkpoint_interval_ms = 20;
    CHECK(kv_open(path_of("ticker"), &o, &db) == KV_OK);
    CHECK(kv_set(db, K("a"), K("1")) == KV_OK);
    kv_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    for (int i = 0; i < 6000 && s.checkpoints == 0; i++) { /* at most 60 s */
        CHECK(kv_stats_get(db, &s) == KV_OK);
        if (s.checkpoints == 0) usleep(10000);
    }
    CHECK(s.checkpoints > 0);
    CHECK(kv_close(db) == KV_OK);
}

static void test_open_errors(void) {
    kv_db *db = (kv_db *)0x1;
    kv_options o = small_opts();
    CHECK(kv_open(NULL, &o, &db) == KV_INVALID_ARGUMENT);
    CHECK(db == (kv_db *)0x1); /* outputs untouched on failure */
    CHECK(kv_open(path_of("x"), &o, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_open("", &o, &db) == KV_INVALID_ARGUMENT);

    kv_options bad = small_opts();
    bad.durability = 77;
    CHECK(kv_open(path_of("bad"), &bad, &db) == KV_INVALID_ARGUMENT);
    bad = small_opts();
    bad.segment_size = 10;
    CHECK(kv_open(path_of("bad"), &bad, &db) == KV_INVALID_ARGUMENT);
    bad = small_opts();
    bad.recovery_mode = 9;
    CHECK(kv_open(path_of("bad"), &bad, &db) == KV_INVALID_ARGUMENT);

    /* A path that is a file. */
    FILE *f = fopen(path_of("plainfile"), "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    CHECK(kv_open(path_of("plainfile"), &o, &db) == KV_INVALID_ARGUMENT);
    /* A directory that cannot be created (its parent is a file). */
    CHECK(kv_open(path_of("plainfile/sub"), &o, &db) == KV_IO);
    CHECK(strstr(kv_last_error_message(), "plainfile") != NULL);

    /* Missing and not allowed to create. */
    kv_options nc = small_opts();
    nc.create_if_missing = 0;
    CHECK(kv_open(path_of("missing"), &nc, &db) == KV_INVALID_ARGUMENT);

    /* A directory without permission. Root bypasses permission bits, so
     * this case only bites for other users; the error must never be a
     * crash or a corruption either way. */
    mkdir(path_of("noperm"), 0500);
    chmod(path_of("noperm"), 0500);
    kv_status st = kv_open(path_of("noperm/db"), &o, &db);
    if (geteuid() != 0) {
        CHECK(st == KV_IO);
    } else {
        CHECK(st == KV_OK);
        if (st == KV_OK) CHECK(kv_close(db) == KV_OK);
        printf("note: running as root, permission bits do not apply; the no-permission case was checked for non-crash only\n");
    }
    chmod(path_of("noperm"), 0700);
}

static void test_null_handles(void) {
    uint8_t *v;
    size_t n;
    uint64_t u;
    int32_t b;
    kv_stats s = {.struct_size = sizeof s};
    kv_iter *it;
    CHECK(kv_close(NULL) == KV_OK);
    CHECK(kv_set(NULL, K("k"), K("v")) == KV_INVALID_ARGUMENT);
    CHECK(kv_get(NULL, K("k"), &v, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_get_into(NULL, K("k"), NULL, 0, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_delete(NULL, K("k")) == KV_INVALID_ARGUMENT);
    CHECK(kv_contains(NULL, K("k"), &b) == KV_INVALID_ARGUMENT);
    CHECK(kv_len(NULL, &u) == KV_INVALID_ARGUMENT);
    CHECK(kv_sync(NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_checkpoint(NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_stats_get(NULL, &s) == KV_INVALID_ARGUMENT);
    CHECK(kv_iter_range(NULL, NULL, 0, NULL, 0, &it) == KV_INVALID_ARGUMENT);
    CHECK(kv_iter_prefix(NULL, NULL, 0, &it) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_commit(NULL, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_put(NULL, K("k"), K("v")) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_delete(NULL, K("k")) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_clear(NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_count(NULL) == 0);
    CHECK(kv_iter_valid(NULL) == 0);
    CHECK(kv_iter_next(NULL) == KV_INVALID_ARGUMENT);
    const uint8_t *p;
    CHECK(kv_iter_key(NULL, &p, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_iter_value(NULL, &p, &n) == KV_INVALID_ARGUMENT);
    kv_iter_free(NULL);
    kv_batch_free(NULL);
    kv_free(NULL);
}

static void test_crud_and_errors(void) {
    kv_options o = small_opts();
    o.max_key_size = 16;
    o.max_value_size = 64;
    kv_db *db = NULL;
    CHECK(kv_open(path_of("crud"), &o, &db) == KV_OK);
    if (!db) return;

    /* Second open of the same directory in this process. */
    kv_db *db2 = NULL;
    CHECK(kv_open(path_of("crud"), &o, &db2) == KV_LOCKED);
    CHECK(db2 == NULL);

    CHECK(kv_set(db, K("alpha"), K("1")) == KV_OK);
    CHECK(kv_set(db, K("empty"), NULL, 0) == KV_OK); /* empty value allowed */
    CHECK(kv_set(db, (const uint8_t *)"a\0b", 3, K("nul inside")) == KV_OK);

    /* Bad arguments never change stored data. */
    CHECK(kv_set(db, NULL, 0, K("v")) == KV_INVALID_ARGUMENT);
    CHECK(kv_set(db, NULL, 5, K("v")) == KV_INVALID_ARGUMENT);
    CHECK(kv_set(db, (const uint8_t *)"", 0, K("v")) == KV_INVALID_ARGUMENT);
    CHECK(kv_set(db, K("k"), NULL, 3) == KV_INVALID_ARGUMENT);
    CHECK(kv_set(db, K("a-key-that-is-much-too-long"), K("v")) == KV_INVALID_ARGUMENT);
    CHECK(strstr(kv_last_error_message(), "max_key_size") != NULL);
    char big[65];
    memset(big, 'x', sizeof big);
    CHECK(kv_set(db, K("alpha"), (const uint8_t *)big, sizeof big) == KV_INVALID_ARGUMENT);
    CHECK(kv_set(db, K("alpha"), (const uint8_t *)big, 64) == KV_OK); /* limit is inclusive */

    uint8_t *v = (uint8_t *)0x1;
    size_t n = 12345;
    CHECK(kv_get(db, K("alpha"), &v, &n) == KV_OK);
    CHECK(n == 64 && v != NULL && memcmp(v, big, 64) == 0);
    kv_free(v);
    CHECK(kv_get(db, K("empty"), &v, &n) == KV_OK);
    CHECK(n == 0 && v != NULL);
    kv_free(v);
    v = (uint8_t *)0x1;
    n = 777;
    /* Every non-OK status sets its own message: a miss after a failed
     * call must not report the earlier failure's text. */
    CHECK(kv_set(db, NULL, 0, K("v")) == KV_INVALID_ARGUMENT);
    CHECK(kv_get(db, K("missing"), &v, &n) == KV_NOT_FOUND);
    CHECK(v == (uint8_t *)0x1 && n == 777);
    CHECK(strcmp(kv_last_error_message(), "key not found") == 0);
    CHECK(kv_get(db, K("alpha"), NULL, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_get(db, K("alpha"), &v, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_get(db, NULL, 0, &v, &n) == KV_INVALID_ARGUMENT);

    uint8_t buf[8];
    CHECK(kv_set(db, NULL, 0, K("v")) == KV_INVALID_ARGUMENT);
    CHECK(kv_get_into(db, (const uint8_t *)"a\0b", 3, buf, sizeof buf, &n) == KV_BUFFER_TOO_SMALL);
    CHECK(n == 10);
    CHECK(strstr(kv_last_error_message(), "buffer too small") != NULL);
    uint8_t buf2[16];
    CHECK(kv_get_into(db, (const uint8_t *)"a\0b", 3, buf2, sizeof buf2, &n) == KV_OK);
    CHECK(n == 10 && memcmp(buf2, "nul inside", 10) == 0);
    CHECK(kv_get_into(db, K("empty"), NULL, 0, &n) == KV_OK && n == 0);
    CHECK(kv_get_into(db, K("missing"), buf2, sizeof buf2, &n) == KV_NOT_FOUND);
    CHECK(kv_get_into(db, K("alpha"), NULL, 5, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_get_into(db, K("alpha"), buf2, sizeof buf2, NULL) == KV_INVALID_ARGUMENT);

    int32_t has = -1;
    CHECK(kv_contains(db, K("alpha"), &has) == KV_OK && has == 1);
    CHECK(kv_contains(db, K("zzz"), &has) == KV_OK && has == 0);
    CHECK(kv_contains(db, K("alpha"), NULL) == KV_INVALID_ARGUMENT);
    uint64_t len = 0;
    CHECK(kv_len(db, &len) == KV_OK && len == 3);
    CHECK(kv_len(db, NULL) == KV_INVALID_ARGUMENT);

    CHECK(kv_delete(db, K("alpha")) == KV_OK);
    CHECK(kv_delete(db, K("alpha")) == KV_OK); /* deleting an absent key is fine */
    CHECK(kv_delete(db, NULL, 1) == KV_INVALID_ARGUMENT);
    CHECK(kv_contains(db, K("alpha"), &has) == KV_OK && has == 0);

    CHECK(kv_sync(db) == KV_OK);
    CHECK(kv_checkpoint(db) == KV_OK);
    kv_stats s;
    memset(&s, 0xAB, sizeof s);
    s.struct_size = sizeof s;
    CHECK(kv_stats_get(db, &s) == KV_OK);
    CHECK(s.keys == 2 && s.snapshots >= 1 && s.checkpoints == 1 && s.poisoned == 0);
    CHECK(s.wal_segments >= 1 && s.disk_bytes == s.wal_bytes + s.snapshot_bytes);
    CHECK(kv_stats_get(db, NULL) == KV_INVALID_ARGUMENT);

    CHECK(kv_close(db) == KV_OK);
    /* Reopen: data survived, and a clean close replays no WAL. */
    CHECK(kv_open(path_of("crud"), &o, &db) == KV_OK);
    CHECK(kv_stats_get(db, &s) == KV_OK && s.recovery_records_replayed == 0 && s.keys == 2);
    CHECK(kv_get_into(db, (const uint8_t *)"a\0b", 3, buf2, sizeof buf2, &n) == KV_OK && n == 10);
    CHECK(kv_close(db) == KV_OK);
}

/* Append one operation to a packed batch (the layout kv_write_packed takes). */
static size_t pack_op(uint8_t *buf, size_t at, uint8_t kind, const char *k, const char *v) {
    uint32_t kl = (uint32_t)strlen(k), vl = v ? (uint32_t)strlen(v) : 0;
    buf[at++] = kind;
    memcpy(buf + at, &kl, 4); /* little-endian on every supported target */
    at += 4;
    if (kind == 1) {
        memcpy(buf + at, &vl, 4);
        at += 4;
    }
    memcpy(buf + at, k, kl);
    at += kl;
    if (kind == 1) {
        memcpy(buf + at, v, vl);
        at += vl;
    }
    return at;
}

static void test_write_packed(void) {
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(path_of("packed"), &o, &db) == KV_OK);
    if (!db) return;
    uint8_t buf[256];
    uint32_t count = 3;
    memcpy(buf, &count, 4);
    size_t n = 4;
    n = pack_op(buf, n, 1, "a", "1");
    n = pack_op(buf, n, 1, "b", "22");
    n = pack_op(buf, n, 2, "a", NULL);
    CHECK(kv_write_packed(db, buf, n) == KV_OK);
    uint64_t len = 0;
    CHECK(kv_len(db, &len) == KV_OK && len == 1);
    uint8_t out[8];
    size_t vl = 0;
    CHECK(kv_get_into(db, K("b"), out, sizeof out, &vl) == KV_OK && vl == 2 && memcmp(out, "22", 2) == 0);
    /* Malformed payloads apply nothing: a short one, a wrong count, an
     * unknown kind, trailing bytes, an empty key. */
    CHECK(kv_write_packed(db, buf, 3) == KV_INVALID_ARGUMENT);
    CHECK(strstr(kv_last_error_message(), "packed batch") != NULL);
    count = 4;
    memcpy(buf, &count, 4);
    CHECK(kv_write_packed(db, buf, n) == KV_INVALID_ARGUMENT);
    count = 3;
    memcpy(buf, &count, 4);
    CHECK(kv_write_packed(db, buf, n + 1) == KV_INVALID_ARGUMENT);
    buf[4] = 9;
    CHECK(kv_write_packed(db, buf, n) == KV_INVALID_ARGUMENT);
    count = 1;
    memcpy(buf, &count, 4);
    size_t e = pack_op(buf, 4, 1, "", "v");
    CHECK(kv_write_packed(db, buf, e) == KV_INVALID_ARGUMENT);
    CHECK(kv_write_packed(db, NULL, 5) == KV_INVALID_ARGUMENT);
    CHECK(kv_write_packed(NULL, buf, e) == KV_INVALID_ARGUMENT);
    CHECK(kv_len(db, &len) == KV_OK && len == 1);
    CHECK(kv_close(db) == KV_OK);
}

/* Per-write durability: a Buffered store whose write asks for SYNC is
 * fsynced up to that write; a Sync store whose write asks for BUFFERED is
 * not; an unknown level writes nothing. */
static void test_write_durability(void) {
    kv_options o = small_opts();
    o.durability = KV_DURABILITY_BUFFERED;
    kv_db *db = NULL;
    CHECK(kv_open(path_of("durability"), &o, &db) == KV_OK);
    if (!db) return;
    kv_stats st = {.struct_size = sizeof st};
    CHECK(kv_set(db, K("a"), K("1")) == KV_OK);
    CHECK(kv_stats_get(db, &st) == KV_OK && st.fsyncs == 0 && st.synced_lsn < st.last_lsn);
    CHECK(kv_set_with(db, K("b"), K("2"), KV_DURABILITY_SYNC) == KV_OK);
    CHECK(kv_stats_get(db, &st) == KV_OK && st.fsyncs == 1 && st.synced_lsn == st.last_lsn);
    CHECK(kv_set_with(db, K("c"), K("3"), 7) == KV_INVALID_ARGUMENT);
    CHECK(strstr(kv_last_error_message(), "durability") != NULL);
    CHECK(kv_delete_with(db, K("a"), 99) == KV_INVALID_ARGUMENT);
    CHECK(kv_set_with(NULL, K("c"), K("3"), KV_DURABILITY_SYNC) == KV_INVALID_ARGUMENT);
    CHECK(kv_set_with(db, NULL, 1, K("3"), KV_DURABILITY_SYNC) == KV_INVALID_ARGUMENT);
    uint64_t len = 0;
    CHECK(kv_len(db, &len) == KV_OK && len == 2);
    CHECK(kv_delete_with(db, K("a"), KV_DURABILITY_SYNC) == KV_OK);
    CHECK(kv_stats_get(db, &st) == KV_OK && st.fsyncs == 2);
    kv_batch *b = kv_batch_new();
    CHECK(kv_batch_put(b, K("d"), K("4")) == KV_OK);
    CHECK(kv_batch_commit_with(db, b, 5) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_commit_with(db, NULL, KV_DURABILITY_SYNC) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_commit_with(db, b, KV_DURABILITY_SYNC) == KV_OK);
    kv_batch_free(b);
    CHECK(kv_stats_get(db, &st) == KV_OK && st.fsyncs == 3);
    uint8_t buf[64];
    uint32_t count = 1;
    memcpy(buf, &count, 4);
    size_t n = pack_op(buf, 4, 1, "e", "5");
    CHECK(kv_write_packed_with(db, buf, n, 3) == KV_INVALID_ARGUMENT);
    CHECK(kv_write_packed_with(db, buf, n, KV_DURABILITY_SYNC) == KV_OK);
    CHECK(kv_stats_get(db, &st) == KV_OK && st.fsyncs == 4);
    CHECK(kv_len(db, &len) == KV_OK && len == 3);
    CHECK(kv_close(db) == KV_OK);

    /* A Sync store: a BUFFERED or OS write waits for no fsync. */
    o = small_opts();
    CHECK(kv_open(path_of("durability2"), &o, &db) == KV_OK);
    if (!db) return;
    CHECK(kv_set(db, K("a"), K("1")) == KV_OK);
    uint64_t before = 0;
    CHECK(kv_stats_get(db, &st) == KV_OK && (before = st.fsyncs) >= 1);
    CHECK(kv_set_with(db, K("b"), K("2"), KV_DURABILITY_BUFFERED) == KV_OK);
    CHECK(kv_set_with(db, K("c"), K("3"), KV_DURABILITY_OS) == KV_OK);
    CHECK(kv_stats_get(db, &st) == KV_OK && st.fsyncs == before && st.synced_lsn < st.last_lsn);
    CHECK(kv_sync(db) == KV_OK);
    CHECK(kv_stats_get(db, &st) == KV_OK && st.synced_lsn == st.last_lsn);
    CHECK(kv_close(db) == KV_OK);
}

static void test_batches_and_iterators(void) {
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(path_of("iter"), &o, &db) == KV_OK);
    if (!db) return;
    kv_batch *b = kv_batch_new();
    CHECK(b != NULL);
    char k[32];
    for (int i = 0; i < 600; i++) {
        int kl = snprintf(k, sizeof k, "%s:%04d", i % 2 ? "odd" : "even", i);
        CHECK(kv_batch_put(b, (const uint8_t *)k, (size_t)kl, (const uint8_t *)k, (size_t)kl) == KV_OK);
    }
    CHECK(kv_batch_count(b) == 600);
    CHECK(kv_batch_put(b, NULL, 0, NULL, 0) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_put(b, K("k"), NULL, 2) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_delete(b, NULL, 0) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_commit(db, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_commit(db, b) == KV_OK);
    uint64_t len = 0;
    CHECK(kv_len(db, &len) == KV_OK && len == 600);

    /* An invalid batch applies nothing. */
    CHECK(kv_batch_clear(b) == KV_OK && kv_batch_count(b) == 0);
    CHECK(kv_batch_delete(b, K("even:0000")) == KV_OK);
    CHECK(kv_batch_put(b, (const uint8_t *)"", 0, K("empty key")) == KV_OK);
    CHECK(kv_batch_commit(db, b) == KV_INVALID_ARGUMENT);
    int32_t has = 0;
    CHECK(kv_contains(db, K("even:0000"), &has) == KV_OK && has == 1);
    kv_batch_free(b);

    /* Prefix iteration, in order, across more than one internal chunk. */
    kv_iter *it = NULL;
    CHECK(kv_iter_prefix(db, K("odd:"), &it) == KV_OK);
    int count = 0;
    char prev[32] = "";
    while (it && kv_iter_valid(it)) {
        const uint8_t *kp, *vp;
        size_t kl, vl;
        CHECK(kv_iter_key(it, &kp, &kl) == KV_OK);
        CHECK(kv_iter_value(it, &vp, &vl) == KV_OK);
        CHECK(kl == vl && memcmp(kp, vp, kl) == 0 && memcmp(kp, "odd:", 4) == 0);
        char cur[32];
        snprintf(cur, sizeof cur, "%.*s", (int)kl, (const char *)kp);
        CHECK(strcmp(prev, cur) < 0);
        strcpy(prev, cur);
        count++;
        CHECK(kv_iter_next(it) == KV_OK);
    }
    CHECK(count == 300);
    const uint8_t *kp;
    size_t kl;
    CHECK(kv_iter_key(it, &kp, &kl) == KV_INVALID_ARGUMENT); /* past the end */
    CHECK(kv_iter_next(it) == KV_OK && !kv_iter_valid(it));
    kv_iter_free(it);

    /* Range [even:0010, even:0020): keys 10,12,...,18. */
    CHECK(kv_iter_range(db, K("even:0010"), K("even:0020"), &it) == KV_OK);
    count = 0;
    while (it && kv_iter_valid(it)) {
        count++;
        CHECK(kv_iter_next(it) == KV_OK);
    }
    CHECK(count == 5);
    kv_iter_free(it);
    CHECK(kv_iter_range(db, NULL, 0, NULL, 0, &it) == KV_OK);
    count = 0;
    while (it && kv_iter_valid(it)) {
        count++;
        kv_iter_next(it);
    }
    CHECK(count == 600);
    kv_iter_free(it);
    CHECK(kv_iter_range(db, NULL, 3, NULL, 0, &it) == KV_INVALID_ARGUMENT);
    CHECK(kv_iter_prefix(db, K("x"), NULL) == KV_INVALID_ARGUMENT);

    /* An iterator outliving its store reports KV_CLOSED, never crashes. */
    CHECK(kv_iter_prefix(db, K("even:"), &it) == KV_OK);
    CHECK(kv_close(db) == KV_OK);
    while (kv_iter_valid(it) && kv_iter_next(it) == KV_OK) {
    }
    CHECK(kv_iter_next(it) == KV_CLOSED || !kv_iter_valid(it));
    kv_iter_free(it);
}

struct writer_arg {
    kv_db *db;
    int id;
    int errors;
};

static void *writer(void *p) {
    struct writer_arg *a = p;
    char k[32];
    for (int i = 0; i < 100; i++) {
        int kl = snprintf(k, sizeof k, "t%d-%d", a->id, i);
        if (kv_set(a->db, (const uint8_t *)k, (size_t)kl, (const uint8_t *)k, (size_t)kl) != KV_OK) a->errors++;
        uint8_t *v;
        size_t n;
        if (kv_get(a->db, (const uint8_t *)k, (size_t)kl, &v, &n) != KV_OK) a->errors++;
        else kv_free(v);
    }
    return NULL;
}

static void test_threads(void) {
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(path_of("threads"), &o, &db) == KV_OK);
    if (!db) return;
    pthread_t t[4];
    struct writer_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct writer_arg){db, i, 0};
        pthread_create(&t[i], NULL, writer, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(a[i].errors == 0);
    }
    uint64_t len = 0;
    CHECK(kv_len(db, &len) == KV_OK && len == 400);
    kv_stats s = {.struct_size = sizeof s};
    CHECK(kv_stats_get(db, &s) == KV_OK && s.writes == 400);
    CHECK(kv_close(db) == KV_OK);
}

static char self_path[4096];

/* Child mode: try to open DIR, exit 0 if it is KV_LOCKED. Run through
 * exec, so the child shares no memory or handles with the parent. */
static int lock_probe(const char *dir) {
    kv_options o = small_opts();
    kv_db *other = NULL;
    kv_status st = kv_open(dir, &o, &other);
    if (st == KV_OK) kv_close(other);
    return st == KV_LOCKED ? 0 : 1;
}

static void test_lock_across_processes(void) {
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(path_of("xproc"), &o, &db) == KV_OK);
    char dir[8192];
    snprintf(dir, sizeof dir, "%s", path_of("xproc"));
    pid_t pid = fork();
    if (pid == 0) {
        execl(self_path, self_path, "--lock-probe", dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(kv_close(db) == KV_OK);
    /* Once closed, another process may open it. */
    pid = fork();
    if (pid == 0) {
        execl(self_path, self_path, "--lock-probe", dir, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
}

static void test_corruption_reported(void) {
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(path_of("corrupt"), &o, &db) == KV_OK);
    if (!db) return;
    for (int i = 0; i < 20; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "k%02d", i);
        kv_set(db, (const uint8_t *)k, (size_t)kl, K("value"));
    }
    CHECK(kv_close(db) == KV_OK);
    /* Flip a byte of the first WAL record, then remove the snapshot written
     * at close so that recovery needs the damaged record. */
    char seg[8192];
    snprintf(seg, sizeof seg, "%s/00000000000000000001.wal", path_of("corrupt"));
    FILE *f = fopen(seg, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 4096 + 50, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 4096 + 50, SEEK_SET);
    fputc(c ^ 0xFF, f);
    fclose(f);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -f %s/snap-*.kvs", path_of("corrupt"));
    CHECK(system(cmd) == 0);
    kv_status st = kv_open(path_of("corrupt"), &o, &db);
    CHECK(st == KV_CORRUPTION);
    CHECK(strstr(kv_last_error_message(), "00000000000000000001.wal") != NULL);
    CHECK(strstr(kv_last_error_message(), "offset 4096") != NULL);
}

/* Paths are bytes (invalid UTF-8 is fine); unrelated files are ignored; a
 * garbage file named like a segment is KV_CORRUPTION naming it, and
 * changes nothing: once it is removed the data is all there. */
static void test_odd_paths_and_garbage_files(void) {
    char dir[8192];
    snprintf(dir, sizeof dir, "%s", path_of("odd-\xff\xfe-dir"));
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(dir, &o, &db) == KV_OK);
    CHECK(kv_set(db, K("k"), K("v")) == KV_OK);
    CHECK(kv_close(db) == KV_OK);
    char p[8400];
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    FILE *f = fopen(p, "w");
    if (f) { fputs("unrelated", f); fclose(f); }
    snprintf(p, sizeof p, "%s/00000000000000000042.wal", dir);
    f = fopen(p, "w");
    CHECK(f != NULL);
    for (int i = 0; f && i < 8192; i++) fputc(0x5A, f);
    if (f) fclose(f);
    db = NULL;
    CHECK(kv_open(dir, &o, &db) == KV_CORRUPTION);
    CHECK(db == NULL);
    CHECK(strstr(kv_last_error_message(), "00000000000000000042.wal") != NULL);
    CHECK(remove(p) == 0);
    CHECK(kv_open(dir, &o, &db) == KV_OK);
    uint8_t buf[4];
    size_t n = 0;
    CHECK(kv_get_into(db, K("k"), buf, sizeof buf, &n) == KV_OK && n == 1 && buf[0] == 'v');
    CHECK(kv_close(db) == KV_OK);
}

/* A full disk: a 1 MiB tmpfs (root only). The failing write returns KV_IO,
 * later writes KV_POISONED, acknowledged data stays readable, and a reopen
 * recovers every acknowledged write. */
static void test_enospc(void) {
    if (geteuid() != 0) {
        printf("note: enospc case NOT RUN (needs root to mount a tmpfs)\n");
        return;
    }
    char dir[8192], cmd[8400];
    snprintf(dir, sizeof dir, "%s", path_of("small"));
    mkdir(dir, 0700);
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=1m tmpfs '%s'", dir);
    if (system(cmd) != 0) {
        printf("note: enospc case NOT RUN (mount failed)\n");
        return;
    }
    char db_dir[8300];
    snprintf(db_dir, sizeof db_dir, "%s/db", dir);
    kv_options o = small_opts();
    o.max_wal_size = 0;
    kv_db *db = NULL;
    CHECK(kv_open(db_dir, &o, &db) == KV_OK);
    uint8_t val[400];
    memset(val, 'v', sizeof val);
    int acked = 0;
    kv_status st = KV_OK;
    char key[32];
    while (db && acked < 100000) {
        int kl = snprintf(key, sizeof key, "k%06d", acked);
        st = kv_set(db, (const uint8_t *)key, (size_t)kl, val, sizeof val);
        if (st != KV_OK) break;
        acked++;
    }
    CHECK(st == KV_IO);
    CHECK(strstr(kv_last_error_message(), "os error 28") != NULL);
    CHECK(kv_set(db, K("after"), K("x")) == KV_POISONED);
    CHECK(kv_checkpoint(db) == KV_POISONED);
    int32_t has = 0;
    CHECK(kv_contains(db, K("k000000"), &has) == KV_OK && has == 1);
    kv_stats s = {.struct_size = sizeof s};
    CHECK(kv_stats_get(db, &s) == KV_OK && s.poisoned == 1);
    CHECK(kv_close(db) == KV_POISONED);
    CHECK(kv_open(db_dir, &o, &db) == KV_OK);
    int lost = 0;
    for (int i = 0; db && i < acked; i++) {
        int kl = snprintf(key, sizeof key, "k%06d", i);
        if (kv_contains(db, (const uint8_t *)key, (size_t)kl, &has) != KV_OK || !has) lost++;
    }
    CHECK(acked > 0 && lost == 0);
    kv_status cs = kv_close(db); /* the final checkpoint may not fit */
    CHECK(cs == KV_OK || cs == KV_IO);
    snprintf(cmd, sizeof cmd, "umount '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* Snapshot streaming callback: hands out `left` bytes of 's', or fails. */
struct snap_src {
    size_t left;
    int fail;
};

static int64_t snap_read(void *ctx, uint8_t *buf, size_t cap) {
    struct snap_src *src = ctx;
    if (src->fail) return -1;
    size_t n = src->left < cap ? src->left : cap;
    if (n > 1000) n = 1000; /* short reads are allowed */
    memset(buf, 's', n);
    src->left -= n;
    return (int64_t)n;
}

static void test_raft_log(void) {
    kv_raft *log = NULL;
    kv_options o = small_opts();
    o.durability = KV_DURABILITY_BUFFERED;
    CHECK(kv_raft_open(path_of("raft"), &o, &log) == KV_INVALID_ARGUMENT);
    CHECK(log == NULL);
    o = small_opts();
    CHECK(kv_raft_open(path_of("raft"), &o, &log) == KV_OK);
    kv_raft *second = NULL;
    CHECK(kv_raft_open(path_of("raft"), &o, &second) == KV_LOCKED && second == NULL);

    uint64_t first = 99, last = 99, term = 0;
    CHECK(kv_raft_bounds(log, &first, &last) == KV_OK && first == 1 && last == 0);
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK(kv_raft_entry_get(log, 1, &term, &data, &len) == KV_OUT_OF_RANGE && data == NULL);
    CHECK(kv_raft_hard_state(log, &term, &data, &len, NULL) == KV_NOT_FOUND);
    CHECK(kv_raft_last_purged(log, &first, &term) == KV_NOT_FOUND);
    uint64_t li = 0, lt = 0;
    uint8_t *cfg = NULL;
    size_t cfg_len = 0;
    CHECK(kv_raft_snapshot(log, &li, &lt, &cfg, &cfg_len, &data, &len) == KV_NOT_FOUND);

    /* 300 entries in batches of 10, payload "e<index>" (index 7: empty). */
    char buf[32][10];
    for (uint64_t base = 1; base <= 300; base += 10) {
        kv_raft_entry es[10];
        for (int i = 0; i < 10; i++) {
            uint64_t idx = base + (uint64_t)i;
            int n = snprintf(buf[i], sizeof buf[i], "e%llu", (unsigned long long)idx);
            es[i] = (kv_raft_entry){idx, 1 + idx / 100, (const uint8_t *)buf[i], idx == 7 ? 0 : (size_t)n};
            if (idx == 7) es[i].data = NULL;
        }
        CHECK(kv_raft_append(log, es, 10) == KV_OK);
    }
    CHECK(kv_raft_bounds(log, &first, &last) == KV_OK && first == 1 && last == 300);
    CHECK(kv_raft_term(log, 250, &term) == KV_OK && term == 3);
    CHECK(kv_raft_term(log, 301, &term) == KV_OUT_OF_RANGE);
    CHECK(kv_raft_term(log, 0, &term) == KV_COMPACTED);
    CHECK(kv_raft_entry_get(log, 123, &term, &data, &len) == KV_OK);
    CHECK(term == 2 && len == 4 && memcmp(data, "e123", 4) == 0);
    kv_free(data);
    CHECK(kv_raft_entry_get(log, 7, NULL, &data, &len) == KV_OK && data != NULL && len == 0);
    kv_free(data);

    /* Appends must continue the log. */
    kv_raft_entry gap = {302, 3, (const uint8_t *)"x", 1};
    CHECK(kv_raft_append(log, &gap, 1) == KV_INVALID_ARGUMENT);
    kv_raft_entry two[2] = {{301, 3, (const uint8_t *)"a", 1}, {303, 3, (const uint8_t *)"b", 1}};
    CHECK(kv_raft_append(log, two, 2) == KV_INVALID_ARGUMENT);
    kv_raft_entry nulldata = {301, 3, NULL, 5};
    CHECK(kv_raft_append(log, &nulldata, 1) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_append(log, NULL, 1) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_append(log, NULL, 0) == KV_OK);
    CHECK(kv_raft_bounds(log, NULL, &last) == KV_OK && last == 300);

    /* The packed form (for bindings): lengths must add up. */
    uint64_t pterms[2] = {3, 3};
    size_t plens[2] = {3, 2};
    CHECK(kv_raft_append_packed(log, 301, 2, pterms, plens, (const uint8_t *)"abcdX", 4) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_append_packed(log, 302, 2, pterms, plens, (const uint8_t *)"abcde", 5) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_append_packed(log, 301, 2, NULL, plens, (const uint8_t *)"abcde", 5) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_append_packed(log, 301, 2, pterms, plens, (const uint8_t *)"abcde", 5) == KV_OK);
    CHECK(kv_raft_entry_get(log, 302, &term, &data, &len) == KV_OK && term == 3 && len == 2 &&
          memcmp(data, "de", 2) == 0);
    kv_free(data);
    CHECK(kv_raft_truncate_suffix(log, 301) == KV_OK);
    CHECK(kv_raft_bounds(log, NULL, &last) == KV_OK && last == 300);

    /* A range read: one block, entries pointing into it. */
    kv_raft_entry *es = NULL;
    size_t n = 0;
    CHECK(kv_raft_entries(log, 95, 105, UINT64_MAX, &es, &n) == KV_OK && n == 10);
    int ok = es != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        char want[16];
        int wl = snprintf(want, sizeof want, "e%zu", 95 + i);
        ok = es[i].index == 95 + i && es[i].term == (95 + i) / 100 + 1 &&
             es[i].data_len == (size_t)wl && memcmp(es[i].data, want, (size_t)wl) == 0;
    }
    CHECK(ok);
    kv_free((uint8_t *)es);
    CHECK(kv_raft_entries(log, 1, 300, 10, &es, &n) == KV_OK && n == 5); /* e1..e5 = 10 bytes */
    kv_free((uint8_t *)es);
    CHECK(kv_raft_entries(log, 5, 5, 10, &es, &n) == KV_OK && n == 0 && es == NULL);
    CHECK(kv_raft_entries(log, 299, 305, UINT64_MAX, &es, &n) == KV_OUT_OF_RANGE);

    /* Hard state: the vote is opaque bytes, NUL included. */
    CHECK(kv_raft_save_hard_state(log, 5, (const uint8_t *)"n\0de", 4, 200) == KV_OK);
    uint64_t commit = 0;
    CHECK(kv_raft_hard_state(log, &term, &data, &len, &commit) == KV_OK);
    CHECK(term == 5 && commit == 200 && len == 4 && memcmp(data, "n\0de", 4) == 0);
    kv_free(data);
    CHECK(kv_raft_save_hard_state(log, 6, NULL, 0, 200) == KV_OK);
    CHECK(kv_raft_hard_state(log, &term, &data, &len, NULL) == KV_OK && term == 6 && len == 0);
    kv_free(data);
    CHECK(kv_raft_save_hard_state(log, 6, NULL, 3, 200) == KV_INVALID_ARGUMENT);

    /* Conflict: truncate the suffix, re-append with a newer term. */
    CHECK(kv_raft_truncate_suffix(log, 251) == KV_OK);
    CHECK(kv_raft_bounds(log, NULL, &last) == KV_OK && last == 250);
    CHECK(kv_raft_entry_get(log, 251, &term, &data, &len) == KV_OUT_OF_RANGE);
    kv_raft_entry again = {251, 9, (const uint8_t *)"new", 3};
    CHECK(kv_raft_append(log, &again, 1) == KV_OK);

    /* Snapshot, then compaction. */
    uint8_t snap[5000];
    memset(snap, 'S', sizeof snap);
    CHECK(kv_raft_save_snapshot(log, 200, 3, (const uint8_t *)"cfg", 3, snap, sizeof snap) == KV_OK);
    CHECK(kv_raft_save_snapshot(log, 200, 3, NULL, 1, snap, sizeof snap) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_truncate_prefix(log, 200) == KV_OK);
    CHECK(kv_raft_bounds(log, &first, &last) == KV_OK && first == 201 && last == 251);
    CHECK(kv_raft_last_purged(log, &li, &lt) == KV_OK && li == 200 && lt == 3);
    CHECK(kv_raft_entry_get(log, 200, &term, &data, &len) == KV_COMPACTED);
    CHECK(strstr(kv_last_error_message(), "200") != NULL);
    CHECK(kv_raft_snapshot(log, &li, &lt, &cfg, &cfg_len, &data, &len) == KV_OK);
    CHECK(li == 200 && lt == 3 && cfg_len == 3 && memcmp(cfg, "cfg", 3) == 0 && len == sizeof snap &&
          memcmp(data, snap, sizeof snap) == 0);
    kv_free(cfg);
    kv_free(data);

    /* Streamed snapshot; a failing reader leaves the previous one. */
    struct snap_src src = {123456, 1};
    CHECK(kv_raft_save_snapshot_stream(log, 250, 3, NULL, 0, snap_read, &src) == KV_IO);
    CHECK(kv_raft_save_snapshot_stream(log, 250, 3, NULL, 0, NULL, &src) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_snapshot(log, &li, NULL, &cfg, &cfg_len, &data, &len) == KV_OK && li == 200);
    kv_free(cfg);
    kv_free(data);
    src.fail = 0;
    CHECK(kv_raft_save_snapshot_stream(log, 250, 3, NULL, 0, snap_read, &src) == KV_OK);
    CHECK(kv_raft_snapshot(log, &li, NULL, &cfg, &cfg_len, &data, &len) == KV_OK);
    CHECK(li == 250 && cfg_len == 0 && len == 123456 && data[0] == 's' && data[123455] == 's');
    kv_free(cfg);
    kv_free(data);
    CHECK(kv_raft_close(log) == KV_OK);
}

static void test_raft_reopen_and_errors(void) {
    kv_raft *log = NULL;
    kv_options o = small_opts();
    CHECK(kv_raft_open(path_of("raft"), NULL, &log) == KV_OK);
    uint64_t first = 0, last = 0, term = 0, commit = 0;
    CHECK(kv_raft_bounds(log, &first, &last) == KV_OK && first == 201 && last == 251);
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK(kv_raft_entry_get(log, 251, &term, &data, &len) == KV_OK && term == 9 && len == 3 &&
          memcmp(data, "new", 3) == 0);
    kv_free(data);
    CHECK(kv_raft_hard_state(log, &term, &data, &len, &commit) == KV_OK && term == 6 && commit == 200);
    kv_free(data);
    /* Metrics of this open: the bounds as gauges, no append yet. */
    char *text = NULL;
    CHECK(kv_raft_metrics_json(log, &text, &len) == KV_OK && text && strlen(text) == len);
    if (text) {
        CHECK(strstr(text, "\"first_index\":201") != NULL);
        CHECK(strstr(text, "\"last_index\":251") != NULL);
        CHECK(strstr(text, "\"appends\":0") != NULL);
        kv_free((uint8_t *)text);
    }
    kv_raft_entry e1 = {252, 9, (const uint8_t *)"x", 1};
    CHECK(kv_raft_append(log, &e1, 1) == KV_OK);
    CHECK(kv_raft_metrics_prometheus(log, "n1", &text, &len) == KV_OK && text);
    if (text) {
        CHECK(strstr(text, "keyval_raft_appends_total{log=\"n1\"} 1\n") != NULL);
        CHECK(strstr(text, "keyval_raft_last_index{log=\"n1\"} 252\n") != NULL);
        kv_free((uint8_t *)text);
    }
    CHECK(kv_raft_metrics_prometheus(log, NULL, &text, &len) == KV_OK && text);
    if (text) {
        CHECK(strstr(text, "{log=\"/") != NULL); /* the directory path */
        kv_free((uint8_t *)text);
    }
    CHECK(kv_raft_metrics_json(log, NULL, &len) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_metrics_json(NULL, &text, &len) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_metrics_prometheus(log, "n1", &text, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_truncate_suffix(log, 252) == KV_OK);
    CHECK(kv_raft_close(log) == KV_OK);

    /* NULL arguments. */
    kv_raft_entry *es;
    size_t n;
    uint8_t *p;
    CHECK(kv_raft_close(NULL) == KV_OK);
    CHECK(kv_raft_open(NULL, &o, &log) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_open(path_of("raft"), &o, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_append(NULL, NULL, 0) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_entry_get(NULL, 1, NULL, &p, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_entries(NULL, 1, 2, 1, &es, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_term(NULL, 1, &term) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_bounds(NULL, &first, &last) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_last_purged(NULL, &first, &last) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_truncate_suffix(NULL, 1) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_truncate_prefix(NULL, 1) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_save_hard_state(NULL, 1, NULL, 0, 0) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_hard_state(NULL, &term, &p, &n, &commit) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_save_snapshot(NULL, 1, 1, NULL, 0, NULL, 0) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_snapshot(NULL, NULL, NULL, &p, &n, &p, &n) == KV_INVALID_ARGUMENT);

    CHECK(kv_raft_open(path_of("raft"), &o, &log) == KV_OK);
    CHECK(kv_raft_entry_get(log, 251, &term, NULL, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_entries(log, 201, 202, 1, NULL, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_term(log, 201, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_hard_state(log, &term, NULL, &n, &commit) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_snapshot(log, NULL, NULL, NULL, &n, &p, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_raft_close(log) == KV_OK);

    /* A key-value directory is not a Raft log, and the other way round. */
    kv_db *db = NULL;
    CHECK(kv_open(path_of("raft"), &o, &db) != KV_OK && db == NULL);
    CHECK(kv_raft_open(path_of("crud"), &o, &log) != KV_OK);
}

static void test_metrics(void) {
    kv_db *db = NULL;
    kv_options o = small_opts();
    CHECK(kv_open(path_of("metrics"), &o, &db) == KV_OK);
    for (int i = 0; i < 20; i++) {
        char k[16];
        int n = snprintf(k, sizeof k, "m%02d", i);
        CHECK(kv_set(db, (const uint8_t *)k, (size_t)n, K("value")) == KV_OK);
    }
    uint8_t *v;
    size_t n;
    CHECK(kv_get(db, K("m03"), &v, &n) == KV_OK);
    kv_free(v);
    CHECK(kv_get(db, K("nope"), &v, &n) == KV_NOT_FOUND);
    CHECK(kv_set(db, (const uint8_t *)"", 0, K("v")) == KV_INVALID_ARGUMENT);
    kv_metrics m = {.struct_size = sizeof m};
    CHECK(kv_metrics_get(db, &m) == KV_OK);
    CHECK(m.puts == 20 && m.writes == 21 && m.gets == 2 && m.get_hits == 1);
    CHECK(m.errors[KV_INVALID_ARGUMENT] == 1 && m.errors[KV_IO] == 0);
    /* Gets are timed one in 32, the store's first included. */
    CHECK(m.write_latency.count == 21 && m.get_latency.count == 1);
    CHECK(m.write_latency.p50 <= m.write_latency.p99 && m.write_latency.p99 <= m.write_latency.max);
    CHECK(m.fsyncs >= 20 && m.keys == 20 && m.bytes_read == 5);
    char *text = NULL;
    size_t len = 0;
    CHECK(kv_metrics_prometheus(db, &text, &len) == KV_OK);
    CHECK(text != NULL && strlen(text) == len && strstr(text, "keyval_puts_total{db=") != NULL);
    kv_free((uint8_t *)text);
    CHECK(kv_metrics_reset(db) == KV_OK);
    CHECK(kv_metrics_get(db, &m) == KV_OK && m.puts == 0 && m.write_latency.count == 0 && m.keys == 20);
    CHECK(kv_metrics_get(NULL, &m) == KV_INVALID_ARGUMENT);
    CHECK(kv_metrics_get(db, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_metrics_reset(NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_metrics_prometheus(db, NULL, &len) == KV_INVALID_ARGUMENT);
    CHECK(kv_close(db) == KV_OK);
}

static int json_has(const uint8_t *p, size_t n, const char *needle);

static void test_keyspaces(void) {
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(path_of("keyspaces"), &o, &db) == KV_OK);
    kv_keyspace *a = NULL, *missing = (kv_keyspace *)0x1;
    CHECK(kv_keyspace_open(db, K("missing"), 0, &missing) == KV_NOT_FOUND);
    CHECK(missing == (kv_keyspace *)0x1);
    CHECK(kv_keyspace_open(db, K(""), 1, &a) == KV_INVALID_ARGUMENT);
    CHECK(kv_keyspace_open(db, K("a"), 1, &a) == KV_OK && a != NULL);
    CHECK(kv_keyspace_set(a, K("k"), K("in a")) == KV_OK);
    CHECK(kv_set(db, K("k"), K("default")) == KV_OK);
    uint8_t *v = NULL;
    size_t n = 0;
    CHECK(kv_keyspace_get(a, K("k"), &v, &n) == KV_OK && n == 4 && memcmp(v, "in a", 4) == 0);
    kv_free(v);
    CHECK(kv_keyspace_get(a, K("nope"), &v, &n) == KV_NOT_FOUND);
    kv_batch *b = kv_batch_new();
    CHECK(kv_batch_put(b, K("x"), K("1")) == KV_OK);
    CHECK(kv_batch_put_in(b, a, K("x"), K("1")) == KV_OK);
    CHECK(kv_batch_delete_in(b, a, K("k")) == KV_OK);
    CHECK(kv_batch_put_in(NULL, a, K("x"), K("1")) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_put_in(b, NULL, K("x"), K("1")) == KV_INVALID_ARGUMENT);
    CHECK(kv_batch_commit(db, b) == KV_OK);
    kv_batch_free(b);
    uint64_t len = 0;
    CHECK(kv_keyspace_len(a, &len) == KV_OK && len == 1);
    CHECK(kv_len(db, &len) == KV_OK && len == 2);
    uint8_t *list = NULL;
    CHECK(kv_keyspace_list(db, &list, &n) == KV_OK && n == 5 && memcmp(list, "[\"a\"]", 5) == 0);
    kv_free(list);

    /* Iteration over a keyspace sees only its keys, in order. */
    CHECK(kv_keyspace_set(a, K("p:2"), K("two")) == KV_OK);
    CHECK(kv_keyspace_set(a, K("p:1"), K("one")) == KV_OK);
    CHECK(kv_keyspace_set(a, K("q"), K("other")) == KV_OK);
    kv_iter *it = NULL;
    CHECK(kv_keyspace_iter_prefix(a, K("p:"), &it) == KV_OK && it != NULL);
    const uint8_t *ik = NULL, *iv = NULL;
    size_t ikl = 0, ivl = 0;
    int seen = 0;
    while (it && kv_iter_valid(it)) {
        CHECK(kv_iter_key(it, &ik, &ikl) == KV_OK && kv_iter_value(it, &iv, &ivl) == KV_OK);
        if (seen == 0) CHECK(ikl == 3 && memcmp(ik, "p:1", 3) == 0 && ivl == 3);
        if (seen == 1) CHECK(ikl == 3 && memcmp(ik, "p:2", 3) == 0);
        seen++;
        CHECK(kv_iter_next(it) == KV_OK);
    }
    CHECK(seen == 2);
    kv_iter_free(it);
    it = NULL;
    CHECK(kv_keyspace_iter_range(a, NULL, 0, NULL, 0, &it) == KV_OK);
    seen = 0;
    while (it && kv_iter_valid(it)) {
        seen++;
        CHECK(kv_iter_next(it) == KV_OK);
    }
    CHECK(seen == 4); /* p:1 p:2 q x; not the default keyspace's k and x */
    kv_iter_free(it);
    CHECK(kv_keyspace_iter_range(a, K("q"), NULL, 0, &it) == KV_OK && kv_iter_valid(it));
    kv_iter_free(it);
    CHECK(kv_keyspace_iter_range(NULL, NULL, 0, NULL, 0, &it) == KV_INVALID_ARGUMENT);
    CHECK(kv_keyspace_iter_prefix(a, NULL, 3, &it) == KV_INVALID_ARGUMENT);

    /* Packed batches name a keyspace by its id (kinds 3 and 4). */
    uint32_t id = 0;
    CHECK(kv_keyspace_id(a, &id) == KV_OK && id >= 1);
    CHECK(kv_keyspace_id(a, NULL) == KV_INVALID_ARGUMENT);
    uint8_t pk[64];
    uint32_t cnt = 2, one = 1;
    size_t at = 0;
    memcpy(pk, &cnt, 4);
    at = 4;
    pk[at++] = 3; /* put in keyspace */
    memcpy(pk + at, &id, 4);
    memcpy(pk + at + 4, &one, 4);
    memcpy(pk + at + 8, &one, 4);
    at += 12;
    pk[at++] = 'z';
    pk[at++] = 'Z';
    pk[at++] = 4; /* delete in keyspace */
    memcpy(pk + at, &id, 4);
    memcpy(pk + at + 4, &one, 4);
    at += 8;
    pk[at++] = 'q';
    CHECK(kv_write_packed(db, pk, at) == KV_OK);
    CHECK(kv_keyspace_get(a, K("z"), &v, &n) == KV_OK && n == 1 && v[0] == 'Z');
    kv_free(v);
    CHECK(kv_keyspace_get(a, K("q"), &v, &n) == KV_NOT_FOUND);
    uint32_t bad_ids[2] = {0, 999};
    for (int i = 0; i < 2; i++) { /* the catalog's id, an id never used */
        memcpy(pk + 5, &bad_ids[i], 4);
        CHECK(kv_write_packed(db, pk, at) == (i == 0 ? KV_INVALID_ARGUMENT : KV_NOT_FOUND));
    }
    CHECK(kv_keyspace_len(a, &len) == KV_OK && len == 4);
    uint8_t *js = NULL;
    size_t jn = 0;
    CHECK(kv_keyspace_stats(a, &js, &jn) == KV_OK && json_has(js, jn, "\"keys\":4"));
    kv_free(js);
    CHECK(kv_keyspace_stats(a, NULL, &jn) == KV_INVALID_ARGUMENT);

    int existed = 0;
    CHECK(kv_keyspace_drop(db, K("a"), &existed) == KV_OK && existed == 1);
    CHECK(kv_keyspace_set(a, K("k"), K("v")) == KV_NOT_FOUND);
    CHECK(kv_keyspace_iter_prefix(a, NULL, 0, &it) == KV_NOT_FOUND);
    CHECK(kv_keyspace_stats(a, &js, &jn) == KV_NOT_FOUND);
    memcpy(pk + 5, &id, 4);
    CHECK(kv_write_packed(db, pk, at) == KV_NOT_FOUND); /* dropped: nothing applied */
    kv_keyspace_free(a);
    kv_keyspace_free(NULL);
    CHECK(kv_close(db) == KV_OK);
}

static int json_has(const uint8_t *p, size_t n, const char *needle) {
    char buf[8192];
    if (n >= sizeof buf) return 0;
    memcpy(buf, p, n);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

static void test_documents(void) {
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(path_of("documents"), &o, &db) == KV_OK);
    uint8_t *out = NULL;
    size_t n = 0;
    CHECK(kv_doc_insert(db, K("users"), K("{\"name\":\"ann\",\"age\":30}"), &out, &n) == KV_OK);
    CHECK(n == 1 && out[0] == '1');
    kv_free(out);
    CHECK(kv_doc_insert(db, K("users"), K("[{\"name\":\"bob\",\"age\":25},{\"_id\":\"z\",\"age\":40}]"), &out, &n) == KV_OK);
    CHECK(json_has(out, n, "[\"2\",\"z\"]"));
    kv_free(out);
    CHECK(kv_doc_insert(db, K("users"), K("{\"_id\":\"z\"}"), NULL, NULL) == KV_DUPLICATE_KEY);
    kv_stats ds = {.struct_size = sizeof ds};
    CHECK(kv_stats_get(db, &ds) == KV_OK && ds.collections == 1 && ds.keyspaces == 3);
    CHECK(kv_doc_insert(db, K("users"), K("[1]"), NULL, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_doc_insert(db, K("users"), K("{not json"), NULL, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_coll_create_index(db, K("users"), K("age"), 0) == KV_OK);
    CHECK(kv_coll_create_index(db, K("users"), K("name"), 1) == KV_OK);
    CHECK(kv_doc_insert(db, K("users"), K("{\"name\":\"ann\"}"), NULL, NULL) == KV_DUPLICATE_KEY);
    CHECK(kv_doc_get(db, K("users"), K("1"), &out, &n) == KV_OK && json_has(out, n, "\"ann\""));
    kv_free(out);
    CHECK(kv_doc_get(db, K("users"), K("99"), &out, &n) == KV_NOT_FOUND);
    CHECK(kv_doc_get(db, K("nobody"), K("1"), &out, &n) == KV_NOT_FOUND);
    CHECK(kv_doc_update(db, K("users"), K("1"), K("{\"$inc\":{\"age\":1}}"), 1, &out, &n) == KV_OK);
    CHECK(json_has(out, n, "\"age\":31"));
    kv_free(out);
    CHECK(kv_doc_update(db, K("users"), K("1"), K("{\"city\":\"oslo\"}"), 0, NULL, NULL) == KV_OK);
    CHECK(kv_doc_update(db, K("users"), K("1"), K("{\"_id\":\"2\"}"), 0, NULL, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_doc_update(db, K("users"), K("77"), K("{}"), 2, NULL, NULL) == KV_NOT_FOUND);
    CHECK(kv_doc_update(db, K("users"), K("77"), K("{\"age\":1}"), 3, NULL, NULL) == KV_OK);
    CHECK(kv_doc_update(db, K("users"), K("1"), K("{}"), 9, NULL, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_doc_update_many(db, K("users"), K("[[\"1\",{\"v\":1}],[\"nope\",{}]]")) == KV_NOT_FOUND);
    CHECK(kv_doc_update_many(db, K("users"), K("[[\"1\",{\"v\":1}],[\"2\",{\"v\":2}]]")) == KV_OK);
    const char *filter = "{\"age\":{\"$gte\":25,\"$lt\":35}}";
    CHECK(kv_doc_find(db, K("users"), K(filter), K("{\"sort\":[\"-age\"],\"limit\":1}"), &out, &n) == KV_OK);
    CHECK(json_has(out, n, "\"total\":2") && json_has(out, n, "\"has_next\":true") && json_has(out, n, "\"ann\""));
    kv_free(out);
    CHECK(kv_doc_find(db, K("users"), K(filter), K("{\"limit\":-1}"), &out, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_doc_find(db, K("users"), K("{\"$bad\":1}"), NULL, 0, &out, &n) == KV_INVALID_ARGUMENT);
    CHECK(kv_doc_find(db, K("ghost"), NULL, 0, NULL, 0, &out, &n) == KV_OK && json_has(out, n, "\"total\":0"));
    kv_free(out);
    CHECK(kv_doc_explain(db, K("users"), K(filter), NULL, 0, &out, &n) == KV_OK);
    CHECK(json_has(out, n, "\"index\":\"age\""));
    kv_free(out);
    uint64_t count = 0;
    CHECK(kv_doc_count(db, K("users"), K(filter), &count) == KV_OK && count == 2);
    CHECK(kv_doc_count(db, K("users"), NULL, 0, &count) == KV_OK && count == 4);
    int existed = 0;
    CHECK(kv_doc_delete(db, K("users"), K("2"), &existed) == KV_OK && existed == 1);
    CHECK(kv_doc_delete(db, K("users"), K("2"), &existed) == KV_OK && existed == 0);
    CHECK(kv_coll_list_indexes(db, K("users"), &out, &n) == KV_OK && json_has(out, n, "\"path\":\"name\""));
    kv_free(out);
    CHECK(kv_coll_stats(db, K("users"), &out, &n) == KV_OK && json_has(out, n, "\"documents\":3"));
    kv_free(out);
    CHECK(kv_coll_drop_index(db, K("users"), K("name"), &existed) == KV_OK && existed == 1);
    CHECK(kv_coll_list(db, &out, &n) == KV_OK && json_has(out, n, "[\"users\"]"));
    kv_free(out);
    CHECK(kv_close(db) == KV_OK);
    CHECK(kv_open(path_of("documents"), &o, &db) == KV_OK);
    CHECK(kv_doc_count(db, K("users"), NULL, 0, &count) == KV_OK && count == 3);
    CHECK(kv_coll_drop(db, K("users"), &existed) == KV_OK && existed == 1);
    CHECK(kv_coll_list(db, &out, &n) == KV_OK && json_has(out, n, "[]"));
    kv_free(out);
    CHECK(kv_doc_insert(NULL, K("users"), K("{}"), NULL, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_close(db) == KV_OK);
}

/* kv_get_many: packed keys in, one block out with values or NULLs, one
 * kv_free; bad input refuses the call and leaves *out alone. */
static void test_get_many(void) {
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(path_of("getmany"), &o, &db) == KV_OK);
    CHECK(kv_set(db, K("alpha"), K("1")) == KV_OK);
    CHECK(kv_set(db, K("beta"), (const uint8_t *)"", 0) == KV_OK);
    CHECK(kv_set(db, K("gamma"), K("three")) == KV_OK);
    const char packed[] = "alphabetazetagammaalpha";
    size_t lens[] = {5, 4, 4, 5, 5};
    kv_value *vals = NULL;
    CHECK(kv_get_many(db, (const uint8_t *)packed, lens, 5, &vals) == KV_OK && vals != NULL);
    if (vals) {
        CHECK(vals[0].value_len == 1 && memcmp(vals[0].value, "1", 1) == 0);
        CHECK(vals[1].value != NULL && vals[1].value_len == 0); /* present, empty */
        CHECK(vals[2].value == NULL && vals[2].value_len == 0); /* absent */
        CHECK(vals[3].value_len == 5 && memcmp(vals[3].value, "three", 5) == 0);
        CHECK(vals[4].value_len == 1 && memcmp(vals[4].value, "1", 1) == 0);
        kv_free(vals);
    }
    kv_metrics m = {.struct_size = sizeof m};
    CHECK(kv_metrics_get(db, &m) == KV_OK && m.gets == 5 && m.get_hits == 4);

    kv_value *none = (kv_value *)&m; /* a sentinel: must stay untouched */
    CHECK(kv_get_many(db, NULL, NULL, 0, &none) == KV_OK && none == NULL);
    kv_value *keep = (kv_value *)&m;
    size_t bad[] = {5, 0};
    CHECK(kv_get_many(db, (const uint8_t *)packed, bad, 2, &keep) == KV_INVALID_ARGUMENT);
    CHECK(keep == (kv_value *)&m);
    CHECK(kv_get_many(db, NULL, lens, 1, &keep) == KV_INVALID_ARGUMENT);
    CHECK(kv_get_many(db, (const uint8_t *)packed, NULL, 1, &keep) == KV_INVALID_ARGUMENT);
    CHECK(kv_get_many(db, (const uint8_t *)packed, lens, 1, NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_get_many(NULL, (const uint8_t *)packed, lens, 1, &keep) == KV_INVALID_ARGUMENT);
    CHECK(keep == (kv_value *)&m);
    CHECK(kv_close(db) == KV_OK);
}

/* Every key operation exists for every keyspace: the same calls on a named
 * keyspace and on the default keyspace's handle, which sees exactly what
 * kv_get / kv_set see. */
static void test_every_operation_on_every_keyspace(void) {
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(path_of("every_keyspace"), &o, &db) == KV_OK);
    kv_keyspace *spaces[2] = {NULL, NULL};
    CHECK(kv_keyspace_default(db, &spaces[0]) == KV_OK && spaces[0] != NULL);
    CHECK(kv_keyspace_open(db, K("named"), 1, &spaces[1]) == KV_OK);
    CHECK(kv_keyspace_default(NULL, &spaces[0]) == KV_INVALID_ARGUMENT);
    CHECK(kv_keyspace_default(db, NULL) == KV_INVALID_ARGUMENT);
    uint32_t id = 99;
    CHECK(kv_keyspace_id(spaces[0], &id) == KV_OK && id == 0);
    for (int i = 0; i < 2; i++) {
        kv_keyspace *ks = spaces[i];
        const char *mine = i == 0 ? "default" : "named";
        CHECK(kv_keyspace_set(ks, K("a"), K("1")) == KV_OK);
        CHECK(kv_keyspace_set_with(ks, K("b"), K(mine), KV_DURABILITY_OS) == KV_OK);
        CHECK(kv_keyspace_set_with(ks, K("c"), K("3"), 77) == KV_INVALID_ARGUMENT);
        int present = -1;
        CHECK(kv_keyspace_contains(ks, K("a"), &present) == KV_OK && present == 1);
        CHECK(kv_keyspace_contains(ks, K("zz"), &present) == KV_OK && present == 0);
        CHECK(kv_keyspace_contains(ks, K("a"), NULL) == KV_INVALID_ARGUMENT);
        uint8_t buf[16];
        size_t n = 0;
        CHECK(kv_keyspace_get_into(ks, K("b"), buf, sizeof buf, &n) == KV_OK &&
              n == strlen(mine) && memcmp(buf, mine, n) == 0);
        CHECK(kv_keyspace_get_into(ks, K("b"), buf, 1, &n) == KV_BUFFER_TOO_SMALL &&
              n == strlen(mine));
        CHECK(kv_keyspace_get_into(ks, K("zz"), buf, sizeof buf, &n) == KV_NOT_FOUND);
        const char packed[] = "abzz";
        size_t lens[] = {1, 1, 2};
        kv_value *vals = NULL;
        CHECK(kv_keyspace_get_many(ks, (const uint8_t *)packed, lens, 3, &vals) == KV_OK);
        if (vals) {
            CHECK(vals[0].value_len == 1 && memcmp(vals[0].value, "1", 1) == 0);
            CHECK(vals[1].value_len == strlen(mine) && memcmp(vals[1].value, mine, strlen(mine)) == 0);
            CHECK(vals[2].value == NULL);
            kv_free(vals);
        }
        CHECK(kv_keyspace_delete_with(ks, K("a"), KV_DURABILITY_SYNC) == KV_OK);
        CHECK(kv_keyspace_delete_with(ks, K("a"), 77) == KV_INVALID_ARGUMENT);
        uint64_t len = 0;
        CHECK(kv_keyspace_len(ks, &len) == KV_OK && len == 1);
    }
    /* The default keyspace's handle and the kv_db calls are one keyspace. */
    uint8_t *v = NULL;
    size_t vn = 0;
    CHECK(kv_get(db, K("b"), &v, &vn) == KV_OK && vn == 7 && memcmp(v, "default", 7) == 0);
    kv_free(v);
    CHECK(kv_set(db, K("d"), K("4")) == KV_OK);
    int present = 0;
    CHECK(kv_keyspace_contains(spaces[0], K("d"), &present) == KV_OK && present == 1);
    CHECK(kv_keyspace_contains(spaces[1], K("d"), &present) == KV_OK && present == 0);
    CHECK(kv_close(db) == KV_OK);
    CHECK(kv_keyspace_contains(spaces[0], K("d"), &present) == KV_CLOSED);
    kv_keyspace_free(spaces[0]);
    kv_keyspace_free(spaces[1]);
}

/* Snapshots, iterators in both directions, and transactions with their
 * conflict status. */
static void test_snapshots_and_transactions(void) {
    kv_options o = small_opts();
    kv_db *db = NULL;
    CHECK(kv_open(path_of("txn"), &o, &db) == KV_OK);
    kv_keyspace *ks = NULL;
    CHECK(kv_keyspace_open(db, K("accounts"), 1, &ks) == KV_OK);
    char k[16];
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "k%d", i);
        CHECK(kv_set(db, K(k), K("old")) == KV_OK);
    }
    kv_snapshot *s = NULL;
    CHECK(kv_snapshot_open(db, &s) == KV_OK && s != NULL);
    CHECK(kv_snapshot_open(NULL, &s) == KV_INVALID_ARGUMENT);
    uint64_t lsn = 0, n = 0;
    CHECK(kv_snapshot_lsn(s, &lsn) == KV_OK && lsn > 0);
    CHECK(kv_set(db, K("k0"), K("new")) == KV_OK);
    CHECK(kv_set(db, K("k5x"), K("inserted")) == KV_OK);
    uint8_t *v = NULL;
    size_t vn = 0;
    CHECK(kv_snapshot_get(s, K("k0"), &v, &vn) == KV_OK && vn == 3 && memcmp(v, "old", 3) == 0);
    kv_free(v);
    CHECK(kv_snapshot_get(s, K("k5x"), &v, &vn) == KV_NOT_FOUND);
    CHECK(kv_snapshot_len(s, &n) == KV_OK && n == 10);
    int present = 1;
    CHECK(kv_snapshot_contains(s, K("k5x"), &present) == KV_OK && present == 0);
    kv_snapshot *sk = NULL;
    CHECK(kv_snapshot_keyspace(s, ks, &sk) == KV_OK);
    CHECK(kv_snapshot_len(sk, &n) == KV_OK && n == 0);
    kv_snapshot_free(sk);

    /* Iterator over the snapshot: forward, then back, seek, last. */
    kv_iter *it = NULL;
    CHECK(kv_snapshot_iter_range(s, NULL, 0, NULL, 0, &it) == KV_OK);
    int count = 0;
    for (; kv_iter_valid(it); kv_iter_next(it)) count++;
    CHECK(count == 10);
    CHECK(kv_iter_seek(it, K("k3")) == KV_OK && kv_iter_valid(it));
    const uint8_t *key = NULL;
    size_t kn = 0;
    CHECK(kv_iter_key(it, &key, &kn) == KV_OK && kn == 2 && memcmp(key, "k3", 2) == 0);
    CHECK(kv_iter_prev(it) == KV_OK && kv_iter_key(it, &key, &kn) == KV_OK && memcmp(key, "k2", 2) == 0);
    CHECK(kv_iter_next(it) == KV_OK && kv_iter_key(it, &key, &kn) == KV_OK && memcmp(key, "k3", 2) == 0);
    CHECK(kv_iter_seek_for_prev(it, K("k55")) == KV_OK && kv_iter_key(it, &key, &kn) == KV_OK &&
          memcmp(key, "k5", 2) == 0);
    CHECK(kv_iter_seek_last(it) == KV_OK && kv_iter_key(it, &key, &kn) == KV_OK && memcmp(key, "k9", 2) == 0);
    count = 0;
    for (; kv_iter_valid(it); kv_iter_prev(it)) count++;
    CHECK(count == 10);
    CHECK(kv_iter_prev(it) == KV_INVALID_ARGUMENT); /* not positioned */
    CHECK(kv_iter_seek_first(it) == KV_OK && kv_iter_key(it, &key, &kn) == KV_OK && memcmp(key, "k0", 2) == 0);
    kv_iter_free(it);
    kv_snapshot_free(s);

    /* A transaction: own writes, atomic commit across keyspaces. */
    kv_txn *t = NULL;
    CHECK(kv_txn_begin(db, &t) == KV_OK && t != NULL);
    CHECK(kv_txn_put(t, NULL, K("a"), K("1")) == KV_OK);
    CHECK(kv_txn_put(t, ks, K("a"), K("2")) == KV_OK);
    CHECK(kv_txn_delete(t, NULL, K("k1")) == KV_OK);
    CHECK(kv_txn_get(t, NULL, K("a"), &v, &vn) == KV_OK && vn == 1 && v[0] == '1');
    kv_free(v);
    CHECK(kv_txn_get(t, NULL, K("k1"), &v, &vn) == KV_NOT_FOUND);
    CHECK(kv_txn_put(t, NULL, (const uint8_t *)"", 0, K("x")) == KV_INVALID_ARGUMENT);
    const char packed[] = "ak0zz";
    size_t lens[] = {1, 2, 2};
    kv_value *vals = NULL;
    CHECK(kv_txn_get_many(t, NULL, (const uint8_t *)packed, lens, 3, &vals) == KV_OK);
    if (vals) {
        CHECK(vals[0].value_len == 1 && vals[1].value_len == 3 && vals[2].value == NULL);
        kv_free(vals);
    }
    CHECK(kv_txn_iter_range(t, NULL, K("k"), K("l"), 1, 3, &it) == KV_OK);
    count = 0;
    for (; kv_iter_valid(it); kv_iter_next(it)) count++;
    CHECK(count == 3);
    CHECK(kv_iter_seek(it, K("k")) == KV_INVALID_ARGUMENT); /* forward only */
    kv_iter_free(it);
    CHECK(kv_get(db, K("a"), &v, &vn) == KV_NOT_FOUND); /* not yet */
    CHECK(kv_txn_commit(t) == KV_OK);
    CHECK(kv_keyspace_get(ks, K("a"), &v, &vn) == KV_OK && vn == 1 && v[0] == '2');
    kv_free(v);

    /* A lost update: the second commit conflicts and writes nothing. */
    kv_txn *t1 = NULL, *t2 = NULL;
    CHECK(kv_txn_begin(db, &t1) == KV_OK && kv_txn_begin_with(db, KV_DURABILITY_OS, &t2) == KV_OK);
    CHECK(kv_txn_get(t1, NULL, K("a"), &v, &vn) == KV_OK);
    kv_free(v);
    CHECK(kv_txn_get(t2, NULL, K("a"), &v, &vn) == KV_OK);
    kv_free(v);
    CHECK(kv_txn_put(t1, NULL, K("a"), K("t1")) == KV_OK);
    CHECK(kv_txn_put(t2, NULL, K("a"), K("t2")) == KV_OK);
    CHECK(kv_txn_put(t2, NULL, K("b"), K("t2")) == KV_OK);
    CHECK(kv_txn_commit(t1) == KV_OK);
    CHECK(kv_txn_commit(t2) == KV_CONFLICT);
    CHECK(strstr(kv_strerror(KV_CONFLICT), "conflict") != NULL);
    CHECK(kv_get(db, K("b"), &v, &vn) == KV_NOT_FOUND);
    CHECK(kv_get(db, K("a"), &v, &vn) == KV_OK && vn == 2 && memcmp(v, "t1", 2) == 0);
    kv_free(v);
    kv_txn *t3 = NULL;
    CHECK(kv_txn_begin(db, &t3) == KV_OK);
    CHECK(kv_txn_put(t3, NULL, K("c"), K("3")) == KV_OK);
    kv_txn_abort(t3);
    kv_txn_abort(NULL);
    CHECK(kv_get(db, K("c"), &v, &vn) == KV_NOT_FOUND);
    CHECK(kv_txn_commit(NULL) == KV_INVALID_ARGUMENT);
    CHECK(kv_txn_begin_with(db, 77, &t3) == KV_INVALID_ARGUMENT);
    /* A transaction and a snapshot that outlive close report KV_CLOSED. */
    CHECK(kv_txn_begin(db, &t3) == KV_OK && kv_snapshot_open(db, &s) == KV_OK);
    CHECK(kv_close(db) == KV_OK);
    CHECK(kv_txn_get(t3, NULL, K("a"), &v, &vn) == KV_CLOSED);
    CHECK(kv_snapshot_get(s, K("a"), &v, &vn) == KV_CLOSED);
    CHECK(kv_txn_commit(t3) == KV_CLOSED);
    kv_snapshot_free(s);
    kv_keyspace_free(ks);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--lock-probe") == 0) return lock_probe(argv[2]);
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    snprintf(scratch, sizeof scratch, "%s", argv[1]);
    if (!realpath(argv[0], self_path)) snprintf(self_path, sizeof self_path, "%s", argv[0]);
    test_versions_and_strings();
    test_options_defaults();
    test_struct_size_rule();
    test_checkpoint_interval();
    test_read_only();
    test_backup();
    test_open_errors();
    test_null_handles();
    test_crud_and_errors();
    test_batches_and_iterators();
    test_write_packed();
    test_threads();
    test_lock_across_processes();
    test_corruption_reported();
    test_enospc();
    test_odd_paths_and_garbage_files();
    test_metrics();
    test_raft_log();
    test_raft_reopen_and_errors();
    test_keyspaces();
    test_documents();
    test_write_durability();
    test_get_many();
    test_every_operation_on_every_keyspace();
    test_snapshots_and_transactions();

    printf("c: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
