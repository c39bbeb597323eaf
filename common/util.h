/* util.h: the few helpers every module of common/ needs: the error-buffer convention of
 * STYLE.md, a monotonic clock and hex digits. Nothing here allocates. */
#ifndef VMH_UTIL_H
#define VMH_UTIL_H

#include <stddef.h>

/* Formats into err (if err is not NULL and errlen > 0); the one way errors reach a caller's
 * buffer. */
void util_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Empties err (out-parameters are reset at entry). */
void util_err_reset(char *err, size_t errlen);

/* Milliseconds of CLOCK_MONOTONIC. */
long long util_monotonic_ms(void);

/* Value of a hex digit, -1 if ch is none (OpenSSL's OPENSSL_hexchar2int). */
int util_hexval(char ch);

#endif
