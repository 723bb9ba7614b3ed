#include <stdio.h>

#include "greet.h"

int main(void) {
    char buf[128];
    greet(buf, (int)sizeof buf, "api-c");
    printf("api-c: %s\n", buf);
    return 0;
}
