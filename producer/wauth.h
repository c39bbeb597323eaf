/* wauth.h: EspoCRM webhook signatures (SPEC §3.1). EspoCRM sends
 * X-Signature = base64(webhookId + ":" + raw HMAC-SHA256(body, secretKey)); WEBHOOK_SECRETS
 * holds "id1:secret1,id2:secret2". Pure functions; the MAC is compared in constant time.
 * A struct wauth owns copies of the secrets and wipes them in wauth_free(). */
#ifndef VMH_WAUTH_H
#define VMH_WAUTH_H

#include <stddef.h>

struct wauth;

/* Parses WEBHOOK_SECRETS. NULL with err (never quoting a secret) on a malformed list. */
struct wauth *wauth_parse(const char *secrets, char *err, size_t errlen);
void wauth_free(struct wauth *a);

enum wauth_result {
    WAUTH_OK = 0,
    WAUTH_MISSING,         /* no header */
    WAUTH_MALFORMED,       /* not base64, or no ':' */
    WAUTH_UNKNOWN_WEBHOOK, /* no secret for that webhook id */
    WAUTH_BAD_MAC,         /* wrong signature */
};

/* Verifies a signature header (may be NULL) over body. */
enum wauth_result wauth_verify(const struct wauth *a, const char *header, const char *body,
                               size_t len);
const char *wauth_result_name(enum wauth_result r);

/* Computes the header EspoCRM would send (for tests and tools): a malloc'd string. */
char *wauth_sign(const char *webhook_id, const char *secret, const char *body, size_t len);

#endif
