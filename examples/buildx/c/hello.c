#include <stdio.h>

#if defined(__x86_64__)
#define ARCH "amd64"
#elif defined(__aarch64__)
#define ARCH "arm64"
#elif defined(__arm__)
#define ARCH "arm"
#elif defined(__riscv) && __riscv_xlen == 64
#define ARCH "riscv64"
#elif defined(__s390x__)
#define ARCH "s390x"
#elif defined(__powerpc64__)
#define ARCH "ppc64le"
#else
#define ARCH "unknown"
#endif

int main(void) {
    printf("hello from c on %s\n", ARCH);
    return 0;
}
