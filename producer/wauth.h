/* wauth.h: EspoCRM webhook signatures (SPEC §3.1). EspoCRM (recorded from 9.1.5,
 * contracts/espocrm-9.1.5/07_webhooks.json) sends two headers over the raw body:
 *   Signature   = base64(webhookId + ":" + lower-case hex HMAC-SHA256(body, secretKey))
 *   X-Signature = base64(webhookId + ":" + raw HMAC-SHA256(body, secretKey))  (deprecated)
 * Signature is taken when present, else X-Signature. WEBHOOK_SECRETS holds
 * "id1:secret1,id2:secret2" (whitespace around items ignored). Pure functions; the MAC is
 * compared in constant time; nothing here logs, and no error text quotes a secret.
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
    WAUTH_MISSING,         /* neither header */
    WAUTH_MALFORMED,       /* not base64, or no ':' */
    WAUTH_UNKNOWN_WEBHOOK, /* no secret for that webhook id */
    WAUTH_BAD_MAC,         /* wrong signature */
};

/* The two header forms. */
enum wauth_header {
    WAUTH_SIGNATURE,   /* "Signature": hex HMAC (EspoCRM >= 9.0; preferred) */
    WAUTH_X_SIGNATURE, /* "X-Signature": raw HMAC (removed in EspoCRM 11) */
};

/* The header's name: "Signature" or "X-Signature". */
const char *wauth_header_name(enum wauth_header h);

/* Verifies a delivery over body: the Signature header when it is present and not empty (then
 * X-Signature is not looked at), else X-Signature. Either may be NULL. */
enum wauth_result wauth_verify(const struct wauth *a, const char *signature,
                               const char *x_signature, const char *body, size_t len);
const char *wauth_result_name(enum wauth_result r);

/* Computes the header value EspoCRM would send (for tests and tools): a malloc'd string the
 * caller frees; NULL on out of memory. */
char *wauth_sign(enum wauth_header h, const char *webhook_id, const char *secret, const char *body,
                 size_t len);

#endif
