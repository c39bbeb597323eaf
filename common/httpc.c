/* httpc.c: blocking HTTP client on one reused libcurl easy handle per client (see httpc.h).
 *
 * Every call resets the handle's options (curl_easy_reset keeps live connections) and sets them
 * again, so nothing of one request leaks into the next. The caller owns each response body
 * (released by httpc_resp_clear) and each parsed JSON answer (json_decref). */
#include "httpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef VMH_VERSION
#define VMH_VERSION "dev"
#endif

#define HTTPC_DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define HTTPC_DEFAULT_TIMEOUT_MS         30000L

struct httpc {
    CURL *curl;
    long connect_timeout_ms;
    long timeout_ms;
    bool insecure;
    char *ca_file;
    char *user_agent;
    char errbuf[CURL_ERROR_SIZE];
};

struct httpc_body {
    char *data;
    size_t len, cap;
};

static pthread_once_t httpc_once = PTHREAD_ONCE_INIT;
static CURLcode httpc_global_rc = CURLE_FAILED_INIT;

static void httpc_global_init_once(void)
{
    /* With CURLOPT_NOSIGNAL curl leaves SIGPIPE alone, and a TLS write to a closed peer raises
     * it: ignore it unless the program has decided otherwise. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    httpc_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int httpc_global_init(void)
{
    pthread_once(&httpc_once, httpc_global_init_once);
    return httpc_global_rc == CURLE_OK ? 0 : -1;
}

struct httpc *httpc_new(const struct httpc_opts *opts)
{
    if (httpc_global_init() != 0)
        return NULL;
    struct httpc *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->connect_timeout_ms = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
                                                                 : HTTPC_DEFAULT_CONNECT_TIMEOUT_MS;
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS;
    c->insecure = opts && opts->insecure;
    if (opts && opts->ca_file && !(c->ca_file = strdup(opts->ca_file)))
        goto err;
    c->user_agent = strdup(opts && opts->user_agent ? opts->user_agent : "vmh-sync/" VMH_VERSION);
    if (!c->user_agent)
        goto err;
    c->curl = curl_easy_init();
    if (!c->curl)
        goto err;
    return c;
err:
    httpc_free(c);
    return NULL;
}

void httpc_free(struct httpc *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->ca_file);
    free(c->user_agent);
    free(c);
}

void httpc_resp_clear(struct httpc_resp *resp)
{
    if (!resp)
        return;
    free(resp->body);
    free(resp->reason);
    memset(resp, 0, sizeof *resp);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct httpc_body *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *nd = realloc(b->data, ncap);
        if (!nd)
            return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
        b->data = nd;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static bool method_ok(const char *m)
{
    if (!*m)
        return false;
    for (; *m; m++)
        if (!((*m >= 'A' && *m <= 'Z') || (*m >= 'a' && *m <= 'z') || *m == '-' || *m == '_'))
            return false;
    return true;
}

static bool has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);
    for (; headers && *headers; headers++)
        if (strncasecmp(*headers, name, n) == 0 && (*headers)[n] == ':')
            return true;
    return false;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Method, URL and the message's error, without the URL's query (it may carry parameters that do
 * not belong in logs). */
static void set_error(char *err, size_t errlen, const char *method, const char *url,
                      const char *what)
{
    if (!err || !errlen)
        return;
    size_t ulen = strcspn(url ? url : "", "?");
    snprintf(err, errlen, "%s %.*s: %s", method ? method : "?", (int)(ulen > 512 ? 512 : ulen),
             url ? url : "", what);
}

#define HTTPC_SET(opt, val)                                                                        \
    do {                                                                                           \
        if ((cc = curl_easy_setopt(h, (opt), (val))) != CURLE_OK)                                  \
            goto setopt_failed;                                                                    \
    } while (0)

int httpc_request(struct httpc *c, const char *method, const char *url, const char *const *headers,
                  const char *body, size_t body_len, struct httpc_resp *resp, char *err,
                  size_t errlen)
{
    struct curl_slist *hdrs = NULL;
    struct httpc_body buf = {0};
    CURLcode cc = CURLE_OK;
    int rc = -1;
    if (err && errlen)
        err[0] = '\0';
    if (resp)
        memset(resp, 0, sizeof *resp);
    if (!c || !method || !url || !resp || !method_ok(method)) {
        set_error(err, errlen, method, url, "invalid arguments");
        return -1;
    }
    if (!body)
        body_len = 0;

    for (const char *const *hp = headers; hp && *hp; hp++) {
        struct curl_slist *n = curl_slist_append(hdrs, *hp);
        if (!n)
            goto oom;
        hdrs = n;
    }
    if (!has_header(headers, "Expect")) {
        /* No "Expect: 100-continue" round trip before a body. */
        struct curl_slist *n = curl_slist_append(hdrs, "Expect:");
        if (!n)
            goto oom;
        hdrs = n;
    }

    CURL *h = c->curl;
    curl_easy_reset(h); /* options only: live connections stay for reuse */
    c->errbuf[0] = '\0';
    HTTPC_SET(CURLOPT_URL, url);
    HTTPC_SET(CURLOPT_NOSIGNAL, 1L);
    HTTPC_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    HTTPC_SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    HTTPC_SET(CURLOPT_TIMEOUT_MS, c->timeout_ms);
    HTTPC_SET(CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
    HTTPC_SET(CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
    if (c->ca_file)
        HTTPC_SET(CURLOPT_CAINFO, c->ca_file);
    HTTPC_SET(CURLOPT_USERAGENT, c->user_agent);
    HTTPC_SET(CURLOPT_ERRORBUFFER, c->errbuf);
    HTTPC_SET(CURLOPT_WRITEFUNCTION, on_body);
    HTTPC_SET(CURLOPT_WRITEDATA, &buf);
    HTTPC_SET(CURLOPT_HTTPHEADER, hdrs);

    bool is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;
    /* A POST is not idempotent: on a reused keep-alive connection that the server closes
     * without answering, libcurl sends the request again on a new one by itself (seen with
     * 7.88: a record created twice). A POST therefore always gets a fresh connection, so that
     * a lost answer reaches the caller as an error (SPEC §5.3, never two records). */
    HTTPC_SET(CURLOPT_FRESH_CONNECT, is_post ? 1L : 0L);
    if (strcmp(method, "HEAD") == 0) {
        HTTPC_SET(CURLOPT_NOBODY, 1L);
    } else if (is_get && !body) {
        HTTPC_SET(CURLOPT_HTTPGET, 1L);
    } else {
        if (body || is_post || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
            /* A body (possibly empty, so PUT/POST/PATCH say Content-Length: 0). */
            HTTPC_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            HTTPC_SET(CURLOPT_POSTFIELDS, body ? body : "");
        }
        if (!is_post)
            HTTPC_SET(CURLOPT_CUSTOMREQUEST, method);
    }

    double t0 = now_ms();
    cc = curl_easy_perform(h);
    resp->elapsed_ms = now_ms() - t0;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL); /* the list is freed below */
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    long request_size = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
    resp->sent = request_size > 0;
    if (cc != CURLE_OK) {
        set_error(err, errlen, method, url, c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (!buf.data && !(buf.data = calloc(1, 1)))
        goto oom;
    struct curl_header *reason = NULL;
    if (curl_easy_header(h, "X-Status-Reason", 0, CURLH_HEADER, -1, &reason) == CURLHE_OK &&
        reason->value && !(resp->reason = strdup(reason->value)))
        goto oom;
    resp->status = status;
    resp->body = buf.data;
    resp->body_len = buf.len;
    buf.data = NULL;
    rc = 0;
    goto out;

setopt_failed:
    set_error(err, errlen, method, url, curl_easy_strerror(cc));
    goto out;
oom:
    set_error(err, errlen, method, url, "out of memory");
out:
    curl_slist_free_all(hdrs);
    free(buf.data);
    return rc;
}

int httpc_json(struct httpc *c, const char *method, const char *url, const char *const *headers,
               const json_t *in, struct httpc_resp *resp, json_t **out, char *err, size_t errlen)
{
    char *body = NULL;
    const char **all = NULL;
    int rc = -1;
    if (out)
        *out = NULL;
    if (resp)
        memset(resp, 0, sizeof *resp);
    if (in && !(body = json_dumps(in, JSON_COMPACT | JSON_ENCODE_ANY))) {
        set_error(err, errlen, method, url, "request body cannot be serialised as JSON");
        goto out;
    }
    size_t n = 0;
    while (headers && headers[n])
        n++;
    all = calloc(n + 3, sizeof *all);
    if (!all) {
        set_error(err, errlen, method, url, "out of memory");
        goto out;
    }
    size_t k = 0;
    if (body && !has_header(headers, "Content-Type"))
        all[k++] = "Content-Type: application/json";
    if (!has_header(headers, "Accept"))
        all[k++] = "Accept: application/json";
    for (size_t i = 0; i < n; i++)
        all[k++] = headers[i];
    all[k] = NULL;
    rc = httpc_request(c, method, url, all, body, body ? strlen(body) : 0, resp, err, errlen);
    if (rc == 0 && out && resp->body_len > 0)
        *out = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY, NULL);
out:
    free(all);
    free(body);
    return rc;
}
