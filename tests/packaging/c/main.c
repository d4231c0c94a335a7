/* An out-of-tree KeyVal program, built by tests/packaging/c_install.sh
 * against an installed copy of the library only. It checks that the header
 * and the library agree, writes, reads back, reopens, and uses the
 * growable structs as the header's convention 10 says. */
#include <keyval.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRY(call)                                                                   \
    do {                                                                            \
        kv_status st_ = (call);                                                     \
        if (st_ != KV_OK) {                                                         \
            fprintf(stderr, "%s: %s (%s)\n", #call, kv_strerror(st_),               \
                    kv_last_error_message());                                       \
            return 1;                                                               \
        }                                                                           \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    if (kv_version_number() != KV_VERSION_NUMBER || strcmp(kv_version(), KV_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s, library %s\n", KV_VERSION_STRING, kv_version());
        return 1;
    }
    kv_options opts = {.struct_size = sizeof opts};
    TRY(kv_options_init(&opts));
    kv_db *db = NULL;
    TRY(kv_open(argv[1], &opts, &db));
    TRY(kv_set(db, (const uint8_t *)"lang", 4, (const uint8_t *)"c", 1));
    TRY(kv_close(db));
    TRY(kv_open(argv[1], &opts, &db));
    uint8_t *val = NULL;
    size_t len = 0;
    TRY(kv_get(db, (const uint8_t *)"lang", 4, &val, &len));
    int ok = len == 1 && val[0] == 'c';
    kv_free(val);
    kv_stats st = {.struct_size = sizeof st};
    TRY(kv_stats_get(db, &st));
    ok = ok && st.keys == 1;
    TRY(kv_close(db));
    printf("%s: KeyVal %s, %s\n", argv[0], kv_version(), ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
