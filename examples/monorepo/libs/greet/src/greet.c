#include "greet.h"

#define GREET_VERSION "1.0"

static int put(char *buf, int size, int at, const char *s) {
    while (*s && at < size - 1) {
        buf[at++] = *s++;
    }
    return at;
}

int greet(char *buf, int size, const char *who) {
    int n = 0;
    if (size <= 0) {
        return 0;
    }
    n = put(buf, size, n, "hello from libgreet " GREET_VERSION ", ");
    n = put(buf, size, n, who);
    buf[n] = '\0';
    return n;
}
