/* util.c: error buffers, monotonic clock, hex digits (see util.h). */
#include "util.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void util_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void util_err_reset(char *err, size_t errlen)
{
    if (err && errlen > 0)
        err[0] = '\0';
}

long long util_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int util_hexval(char ch)
{
    return OPENSSL_hexchar2int((unsigned char)ch);
}
