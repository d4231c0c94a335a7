// Proves the header works from C++ (cpp_compat): includes it, calls a few
// functions, and links.
#include "keyval.h"

#include <cstring>
#include <iostream>
#include <string>

int main() {
    kv_options o = {};
    o.struct_size = sizeof o;
    if (kv_options_init(&o) != KV_OK) return 1;
    std::string v = kv_version();
    if (v != KV_VERSION_STRING || o.durability != KV_DURABILITY_SYNC) return 1;
    kv_db *db = nullptr;
    if (kv_open(nullptr, &o, &db) != KV_INVALID_ARGUMENT) return 1;
    std::cout << "c++: header compiles and links, library " << v << std::endl;
    return 0;
}
