/* phone.h: phone numbers as EspoCRM stores and validates them (SPEC §5.4), behind one small C
 * interface to libphonenumber (Debian libphonenumber-dev, the library EspoCRM's own phone
 * handling is built on). phone.cc is the only file that touches libphonenumber.
 *
 * Thread-safe (libphonenumber's PhoneNumberUtil is a read-only singleton). Every string this
 * module returns is malloc'd and freed by the caller with free(); NULL means out of memory or,
 * where a function says so, "no answer". */
#ifndef VMH_PHONE_H
#define VMH_PHONE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* EspoCRM's sanitiser (international mode): a value that starts with '+' (after trimming) and
 * that libphonenumber can parse is stored as its E.164 form ("+49 511 12345" → "+4951112345",
 * "+49 (511) 98-765" → "+4951198765"); any other value is stored trimmed and otherwise as
 * given. NULL for NULL (or out of memory). */
char *phone_espo_sanitize(const char *value);

/* EspoCRM's validation of a sanitised value (international mode): characters all in
 * [0-9A-Za-z_@:#+().\- ], parseable without a region, equal to its own E.164 form, and a
 * *possible* number (length check only: "+495111" passes, as recorded). "0511/12345" and
 * "0511 12345" are rejected; so is an unsanitised "+49 511 12345". NULL → false. */
bool phone_espo_valid(const char *sanitized);

/* The E.164 form used to compare numbers across both systems: separators stripped, "00…" →
 * "+…", a national number (leading single 0) in the country of region (ISO 3166 alpha-2, e.g.
 * "DE"; NULL = phone_default_region()). NULL when no rule makes the value an international
 * number (or out of memory). A non-NULL answer always passes phone_espo_valid(). */
char *phone_e164(const char *value, const char *region);

/* The number in international format with spaces ("+49 511 12345"), as the sync writes it to
 * Advoware. NULL when phone_e164() has no answer. */
char *phone_international(const char *value, const char *region);

/* Equal as phone numbers: equal E.164 forms, or, when either has none, equal after trimming.
 * false when either is NULL. */
bool phone_eq(const char *a, const char *b, const char *region);

/* The process-wide default region (PHONE_DEFAULT_COUNTRY, "DE" until set; case-insensitive, kept
 * upper-case). set returns 0, or -1 when libphonenumber does not know region ("XX", "", NULL,
 * "DEU"); the old region then stays. Call set once at start, before threads. */
int phone_set_default_region(const char *region);
const char *phone_default_region(void);

#ifdef __cplusplus
}
#endif

#endif
