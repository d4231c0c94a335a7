/* basic.c: open, set, get, iterate, batch, close, with error handling done
 * right. Build: see the Makefile target `c-example`. Run: ./basic DIR */
#include "keyval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print the status and the thread's detailed message, then fail. */
static int report(const char *what, kv_status st) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, kv_strerror(st), kv_last_error_message());
    return 1;
}

#define TRY(what, call)                          \
    do {                                         \
        kv_status st_ = (call);                  \
        if (st_ != KV_OK) {                      \
            rc = report(what, st_);              \
            goto out;                            \
        }                                        \
    } while (0)

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "basic-example-db";
    int rc = 0;
    kv_db *db = NULL;
    kv_batch *batch = NULL;
    kv_iter *it = NULL;

    if (strcmp(kv_version(), KV_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s does not match library %s\n", KV_VERSION_STRING, kv_version());
        return 1;
    }

    kv_options opts = {.struct_size = sizeof opts}; /* convention 10 */
    TRY("kv_options_init", kv_options_init(&opts));
    opts.durability = KV_DURABILITY_SYNC; /* the default: fdatasync before OK */
    TRY("kv_open", kv_open(dir, &opts, &db));

    const char *key = "greeting", *val = "hello, world";
    TRY("kv_set", kv_set(db, (const uint8_t *)key, strlen(key), (const uint8_t *)val, strlen(val)));

    uint8_t *got = NULL;
    size_t got_len = 0;
    TRY("kv_get", kv_get(db, (const uint8_t *)key, strlen(key), &got, &got_len));
    printf("%s = %.*s\n", key, (int)got_len, (const char *)got);
    kv_free(got); /* values from kv_get are ours to free */

    kv_status st = kv_get(db, (const uint8_t *)"nope", 4, &got, &got_len);
    printf("missing key: %s\n", st == KV_NOT_FOUND ? "KV_NOT_FOUND, as expected" : kv_strerror(st));

    /* A batch is applied atomically, also across a crash. */
    batch = kv_batch_new();
    if (!batch) {
        fprintf(stderr, "out of memory\n");
        rc = 1;
        goto out;
    }
    for (int i = 0; i < 5; i++) {
        char k[32], v[32];
        int kl = snprintf(k, sizeof k, "fruit:%02d", i);
        int vl = snprintf(v, sizeof v, "%d apples", i * 3);
        TRY("kv_batch_put", kv_batch_put(batch, (const uint8_t *)k, (size_t)kl, (const uint8_t *)v, (size_t)vl));
    }
    TRY("kv_batch_delete", kv_batch_delete(batch, (const uint8_t *)key, strlen(key)));
    TRY("kv_batch_commit", kv_batch_commit(db, batch));

    /* Iterate over a prefix, in key order. */
    TRY("kv_iter_prefix", kv_iter_prefix(db, (const uint8_t *)"fruit:", 6, &it));
    while (kv_iter_valid(it)) {
        const uint8_t *k, *v;
        size_t kl, vl;
        TRY("kv_iter_key", kv_iter_key(it, &k, &kl));
        TRY("kv_iter_value", kv_iter_value(it, &v, &vl));
        printf("  %.*s -> %.*s\n", (int)kl, (const char *)k, (int)vl, (const char *)v);
        TRY("kv_iter_next", kv_iter_next(it));
    }

    uint64_t n = 0;
    TRY("kv_len", kv_len(db, &n));
    printf("%llu keys\n", (unsigned long long)n);

out:
    kv_iter_free(it);
    kv_batch_free(batch);
    if (db) {
        kv_status cs = kv_close(db); /* final checkpoint; NULL would be a no-op */
        if (cs != KV_OK && rc == 0)
            rc = report("kv_close", cs);
    }
    return rc;
}
