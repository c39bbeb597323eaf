/* httpc.h: a blocking HTTP client on libcurl, one reusable handle per thread (connections are
 * kept alive between calls of the same client).
 *
 * No retry policy hides in here: a call is one exchange and the caller decides what a status or
 * a transport error means. TLS peer and host verification are on unless explicitly turned off.
 * A struct httpc is not thread-safe: use one per thread. Responses are owned by the caller and
 * released with httpc_resp_clear(). */
#ifndef VMH_HTTPC_H
#define VMH_HTTPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct httpc;

struct httpc_opts {
    long connect_timeout_ms; /* default 5000 */
    long timeout_ms;         /* whole exchange; default 30000 (HTTP_TIMEOUT_MS) */
    bool insecure;           /* turn TLS verification off: tests against self-signed only */
    const char *ca_file;     /* optional CA bundle; copied */
    const char *user_agent;  /* optional; copied; default "vmh-sync/<version>" */
};

struct httpc_resp {
    long status; /* HTTP status; 0 when no answer was received */
    char *body;  /* NUL-terminated, malloc'd (never NULL after a successful call) */
    size_t body_len;
    double elapsed_ms; /* whole exchange */
    char *reason;      /* the X-Status-Reason header (EspoCRM's reason for most 4xx), malloc'd;
                          NULL when the answer had none */
    bool sent;         /* the request (or part of it) left this host: after a transport error,
                          the server may have acted on it (an answer lost, not a refusal) */
};

/* Calls curl_global_init once per process (thread-safe); httpc_new() calls it too. Requests set
 * CURLOPT_NOSIGNAL, so it also sets SIGPIPE to ignored if it is still at its default (TLS writes
 * to a closed peer raise it). 0, or -1 if curl cannot be initialised. */
int httpc_global_init(void);

/* NULL opts = defaults. NULL on out of memory. */
struct httpc *httpc_new(const struct httpc_opts *opts);
void httpc_free(struct httpc *c);

/* One exchange. A POST always opens a fresh connection (libcurl would silently repeat a POST
 * whose reused connection closed without an answer). headers: NULL-terminated "Name: value"
 * lines, may be NULL. body may be NULL
 * (PUT, POST and PATCH then send an empty body). Redirects are not followed, and curl's own
 * "Expect: 100-continue" is suppressed (no waiting round trip before a body).
 * Returns 0 when an HTTP answer arrived (any status, see resp->status), or -1 on a transport
 * error (connect refused, timeout, TLS, ...) with err set and resp->status = 0. resp is reset at
 * entry; after either return it must be cleared with httpc_resp_clear(). */
int httpc_request(struct httpc *c, const char *method, const char *url, const char *const *headers,
                  const char *body, size_t body_len, struct httpc_resp *resp, char *err,
                  size_t errlen);

/* The same with JSON: `in` (may be NULL: no body) is serialised compactly with
 * Content-Type: application/json, and Accept: application/json is sent (a Content-Type or Accept
 * line in `headers` takes their place); the answer body is parsed into *out when it is JSON (else
 * *out = NULL; a non-JSON body is not an error: the status says what happened). *out is a new
 * reference the caller releases with json_decref(). */
int httpc_json(struct httpc *c, const char *method, const char *url, const char *const *headers,
               const json_t *in, struct httpc_resp *resp, json_t **out, char *err, size_t errlen);

void httpc_resp_clear(struct httpc_resp *resp);

#endif
