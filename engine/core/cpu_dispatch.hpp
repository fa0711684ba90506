// Hot loops compiled for several x86-64 levels and picked at load time (GCC target_clones). Off under the
// sanitizers: the load-time resolver runs before ASan/TSan are initialised and crashes there.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) &&     \
    !defined(__SANITIZE_THREAD__)
#define TS_CLONES_V3 __attribute__((target_clones("arch=x86-64-v3", "default")))
#define TS_CLONES_V4_V3 __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TS_CLONES_V3
#define TS_CLONES_V4_V3
#endif
