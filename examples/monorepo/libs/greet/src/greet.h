#ifndef GREET_H
#define GREET_H

/* Writes "hello from libgreet <version>, <who>" into buf (at most size bytes, always
 * NUL-terminated) and returns its length. Calls nothing from libc, so the archive links
 * into glibc (gcc) and musl (zig cc, cgo) programs alike. */
int greet(char *buf, int size, const char *who);

#endif
