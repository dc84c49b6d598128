/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * A mock of the Genesys Cloud Scripts API (see shared UPSTREAM.md): the
 * Scripts endpoints, a concurrency limit per script-version key and a
 * token bucket per bearer token, answered with Genesys' exact 429, fault
 * injection, and an accounting endpoint for tests and benchmarks.
 *
 * One thread, libevent's evhttp; every delay is a timer, so requests are
 * really in flight at the same time.  See tools/mock/README.md.
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define MAX_BODY      512000
#define ARRIVALS      64
#define BODY_HASHES   16
#define PLAN_MAX      64
#define TABLE_SIZE    4096

typedef struct key_s {
    struct key_s  *next;
    char          *name;
    int            in_flight;
    int            peak;
    uint64_t       requests;
    uint64_t       status[600];
    size_t         last_body_len;
    uint64_t       hashes[BODY_HASHES];
    int            nhashes;
    double         first_ms;
    double         arrivals[ARRIVALS];
    int            narrivals;
    double         finish[1024];     /* ends of the requests in flight */
    char          *plan[PLAN_MAX];
    int            plan_len;
    int            plan_pos;
} key_t_;

typedef struct bucket_s {
    struct bucket_s  *next;
    char             *token;
    double            tokens;
    double            last_ms;
} bucket_t;

typedef struct {
    int            status;
    int            ra;          /* Retry-After seconds; -1: none */
    int            ra_date;     /* as an HTTP-date */
    int            ra_junk;
    int            delay;       /* ms, -1: default */
    int            echo;
    long           size;        /* -1: none */
    int            reset;
} action_t;

typedef struct {
    struct evhttp_request  *req;
    struct event           *timer;
    key_t_                 *key;
    action_t                a;
    char                    script_id[256];
    char                    version[256];
    double                  end_ms;
    int                     counted;
} pending_t;

static struct event_base  *base;
static key_t_             *table[TABLE_SIZE];
static bucket_t           *buckets[TABLE_SIZE];
static key_t_             *global_plan;
static int                 limit_per_key;
static int                 rate_per_min;
static int                 default_delay;
static int                 quiet;
static uint64_t            total_requests, total_429;
static int                 total_in_flight, total_peak;
static char                pattern[65536];

static double
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static uint64_t
fnv(const void *p, size_t n)
{
    const unsigned char  *s = p;
    uint64_t              h = 1469598103934665603ULL;

    while (n--) {
        h ^= *s++;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t
rnd(void)
{
    static uint64_t  x;

    if (x == 0) {
        x = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static void
uuid(char *out)
{
    uint64_t  a = rnd(), b = rnd();

    snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012" PRIx64,
             (unsigned) (a >> 32), (unsigned) (a >> 16) & 0xffff,
             (unsigned) a & 0xfff, (unsigned) ((b >> 48) & 0x3fff) | 0x8000,
             (uint64_t) (b & 0xffffffffffffULL));
}

static key_t_ *
key_get(const char *name, int create)
{
    uint64_t  h = fnv(name, strlen(name)) % TABLE_SIZE;
    key_t_   *k;

    for (k = table[h]; k; k = k->next) {
        if (strcmp(k->name, name) == 0) {
            return k;
        }
    }
    if (!create) {
        return NULL;
    }
    k = calloc(1, sizeof(key_t_));
    k->name = strdup(name);
    k->next = table[h];
    table[h] = k;
    return k;
}

static void
plan_clear(key_t_ *k)
{
    int  i;

    for (i = 0; i < k->plan_len; i++) {
        free(k->plan[i]);
    }
    k->plan_len = 0;
    k->plan_pos = 0;
}

static void
reset_all(void)
{
    int       i;
    key_t_   *k, *next;
    bucket_t *b, *bn;

    for (i = 0; i < TABLE_SIZE; i++) {
        for (k = table[i]; k; k = next) {
            next = k->next;
            if (k->in_flight) {
                /* answers still to come find their key again */
                k->peak = k->in_flight;
                k->requests = 0;
                memset(k->status, 0, sizeof(k->status));
                k->nhashes = 0;
                k->narrivals = 0;
                k->first_ms = 0;
                k->last_body_len = 0;
                plan_clear(k);
                continue;
            }
            plan_clear(k);
            free(k->name);
            free(k);
        }
        table[i] = NULL;
        for (b = buckets[i]; b; b = bn) {
            bn = b->next;
            free(b->token);
            free(b);
        }
        buckets[i] = NULL;
    }
    if (global_plan) {
        plan_clear(global_plan);
    }
    total_requests = 0;
    total_429 = 0;
    total_peak = total_in_flight;
}

/* "429/ra=5/delay=100", "200/echo", "reset", ... */
static void
parse_action(const char *s, action_t *a)
{
    char  buf[256], *tok, *save;

    memset(a, 0, sizeof(*a));
    a->status = 200;
    a->ra = -2;
    a->delay = -1;
    a->size = -1;

    snprintf(buf, sizeof(buf), "%s", s);

    for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (isdigit((unsigned char) tok[0])) {
            a->status = atoi(tok);
        } else if (strcmp(tok, "reset") == 0) {
            a->reset = 1;
        } else if (strcmp(tok, "echo") == 0) {
            a->echo = 1;
        } else if (strcmp(tok, "ra=none") == 0) {
            a->ra = -1;
        } else if (strcmp(tok, "ra=junk") == 0) {
            a->ra_junk = 1;
        } else if (strncmp(tok, "ra=", 3) == 0) {
            a->ra = atoi(tok + 3);
        } else if (strncmp(tok, "date=", 5) == 0) {
            a->ra = atoi(tok + 5);
            a->ra_date = 1;
        } else if (strncmp(tok, "delay=", 6) == 0) {
            a->delay = atoi(tok + 6);
        } else if (strncmp(tok, "size=", 5) == 0) {
            a->size = atol(tok + 5);
        }
    }
    if (a->status < 100 || a->status > 599) {
        a->status = 200;
    }
    if (a->ra == -2) {
        /* Genesys sends Retry-After with its 429s, not with its 5xx */
        a->ra = (a->status == 429) ? 1 : -1;
    }
}

static void
set_common(struct evhttp_request *req, const char *id, const char *type)
{
    struct evkeyvalq  *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "ININ-Correlation-Id", id);
    if (type) {
        evhttp_add_header(h, "Content-Type", type);
    }
}

static void
send_error(struct evhttp_request *req, int status, int ra, int ra_date,
    int ra_junk)
{
    char               id[40], body[512], hdr[64];
    const char        *code, *msg, *reason;
    struct evbuffer   *out;
    struct evkeyvalq  *h;
    time_t             t;
    struct tm          tm;

    uuid(id);
    h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "ININ-Correlation-Id", id);

    switch (status) {
    case 429:
        reason = "Too Many Requests";
        if (ra < 0 && !ra_junk) {
            code = "too.many.requests";
            msg = "Rate limit exceeded the maximum";
        } else {
            code = "too.many.requests.retry.after";
            msg = NULL;
        }
        break;
    case 502:
        reason = "Bad Gateway"; code = "bad.gateway"; msg = "Bad Gateway";
        break;
    case 503:
        reason = "Service Unavailable"; code = "service.unavailable";
        msg = "Service Unavailable";
        break;
    case 504:
        reason = "Gateway Timeout"; code = "request.timeout";
        msg = "The request timed out";
        break;
    case 404:
        reason = "Not Found"; code = "not.found";
        msg = "The requested resource was not found";
        break;
    case 413:
        reason = "Request Entity Too Large"; code = "request.too.large";
        msg = "The request is over the size limit";
        break;
    default:
        reason = "Error"; code = "error"; msg = "Error";
    }

    if ((status == 429 || status == 503) && (ra >= 0 || ra_junk)) {
        if (ra_junk) {
            snprintf(hdr, sizeof(hdr), "soon");
        } else if (ra_date) {
            t = time(NULL) + ra;
            gmtime_r(&t, &tm);
            strftime(hdr, sizeof(hdr), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        } else {
            snprintf(hdr, sizeof(hdr), "%d", ra);
        }
        evhttp_add_header(h, "Retry-After", hdr);
    }

    if (status == 429 || status == 503) {
        evhttp_add_header(h, "Cache-Control",
                          "no-cache, no-store, must-revalidate");
    }
    evhttp_add_header(h, "Content-Type", "application/json");

    if (msg == NULL) {
        snprintf(body, sizeof(body),
                 "{\"message\":\"Rate limit exceeded the maximum. Retry the "
                 "request in [%d] seconds\",\"code\":\"%s\",\"status\":%d,"
                 "\"contextId\":\"%s\",\"details\":[],\"errors\":[]}",
                 ra_junk ? 1 : ra, code, status, id);
    } else {
        snprintf(body, sizeof(body),
                 "{\"message\":\"%s\",\"code\":\"%s\",\"status\":%d,"
                 "\"contextId\":\"%s\",\"details\":[],\"errors\":[]}",
                 msg, code, status, id);
    }

    out = evbuffer_new();
    evbuffer_add(out, body, strlen(body));
    evhttp_send_reply(req, status, reason, out);
    evbuffer_free(out);
}

static void
count_status(key_t_ *k, int status)
{
    if (k && status >= 0 && status < 600) {
        k->status[status]++;
    }
    if (status == 429) {
        total_429++;
    }
}

static void
finish(pending_t *p)
{
    key_t_  *k = p->key;
    int      i;

    if (p->counted && k) {
        k->in_flight--;
        total_in_flight--;
        for (i = 0; i < 1024; i++) {
            if (k->finish[i] == p->end_ms) {
                k->finish[i] = 0;
                break;
            }
        }
    }
    if (p->timer) {
        event_free(p->timer);
    }
    free(p);
}

static void
answer(pending_t *p)
{
    struct evhttp_request  *req = p->req;
    struct evbuffer        *in, *out;
    const char             *type;
    char                    id[40], body[1024];
    long                    left;
    size_t                  n;

    count_status(p->key, p->a.reset ? 0 : p->a.status);

    if (p->a.reset) {
        struct evhttp_connection  *conn = evhttp_request_get_connection(req);
        struct bufferevent        *bev = evhttp_connection_get_bufferevent(conn);
        struct linger              lg = { 1, 0 };
        int                        fd = bufferevent_getfd(bev);

        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        shutdown(fd, SHUT_RDWR);
        finish(p);
        return;
    }

    if (p->a.status != 200) {
        send_error(req, p->a.status, p->a.ra, p->a.ra_date, p->a.ra_junk);
        finish(p);
        return;
    }

    uuid(id);
    out = evbuffer_new();

    if (p->a.echo) {
        in = evhttp_request_get_input_buffer(req);
        type = evhttp_find_header(evhttp_request_get_input_headers(req),
                                  "Content-Type");
        set_common(req, id, type ? type : "application/octet-stream");
        evbuffer_add_buffer(out, in);

    } else if (p->a.size >= 0) {
        set_common(req, id, "text/plain");
        for (left = p->a.size; left > 0; left -= n) {
            n = left > (long) sizeof(pattern) ? sizeof(pattern) : (size_t) left;
            evbuffer_add_reference(out, pattern, n, NULL, NULL);
        }

    } else {
        set_common(req, id, "application/json");
        if (evhttp_request_get_command(req) == EVHTTP_REQ_POST
            && strstr(evhttp_request_get_uri(req), "/export"))
        {
            snprintf(body, sizeof(body),
                     "{\"url\":\"https://example.invalid/export/%s.json\"}",
                     p->script_id);
        } else {
            snprintf(body, sizeof(body),
                     "{\"id\":\"%s\",\"name\":\"Script %s\",\"versionId\":\"%s\"}",
                     p->script_id, p->script_id, p->version);
        }
        evbuffer_add(out, body, strlen(body));
    }

    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
    finish(p);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    answer(arg);
}

/* the versionId string of a JSON body, without a full parse of big ones */
static void
body_version(struct evbuffer *in, char *out, size_t size)
{
    size_t        len = evbuffer_get_length(in);
    json_t       *j, *v;
    json_error_t  err;

    out[0] = '\0';
    if (len == 0 || len > MAX_BODY) {
        return;
    }
    j = json_loadb((const char *) evbuffer_pullup(in, -1), len, 0, &err);
    if (j == NULL) {
        return;
    }
    v = json_object_get(j, "versionId");
    if (json_is_string(v)) {
        snprintf(out, size, "%s", json_string_value(v));
    }
    json_decref(j);
}

static int
rate_allows(struct evhttp_request *req, int *ra)
{
    const char  *auth;
    bucket_t    *b;
    size_t       h;
    double       now, rate;

    if (rate_per_min <= 0) {
        return 1;
    }
    auth = evhttp_find_header(evhttp_request_get_input_headers(req),
                              "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
        return 1;
    }
    auth += 7;
    h = fnv(auth, strlen(auth)) % TABLE_SIZE;
    for (b = buckets[h]; b; b = b->next) {
        if (strcmp(b->token, auth) == 0) {
            break;
        }
    }
    now = now_ms();
    rate = rate_per_min / 60000.0;
    if (b == NULL) {
        b = calloc(1, sizeof(bucket_t));
        b->token = strdup(auth);
        b->tokens = rate_per_min;
        b->last_ms = now;
        b->next = buckets[h];
        buckets[h] = b;
    }
    b->tokens += (now - b->last_ms) * rate;
    if (b->tokens > rate_per_min) {
        b->tokens = rate_per_min;
    }
    b->last_ms = now;
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 1;
    }
    *ra = (int) ((1 - b->tokens) / rate / 1000) + 1;
    return 0;
}

static const char *
query_get(struct evkeyvalq *q, const char *name)
{
    return q ? evhttp_find_header(q, name) : NULL;
}

static void
send_json(struct evhttp_request *req, json_t *j)
{
    char             *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    struct evbuffer  *out = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Type", "application/json");
    evbuffer_add(out, s, strlen(s));
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
    free(s);
    json_decref(j);
}

static json_t *
key_json(key_t_ *k)
{
    json_t  *o = json_object(), *st = json_object(), *arr = json_array();
    char     code[8];
    int      i, n, start;

    if (k == NULL) {
        json_object_set_new(o, "requests", json_integer(0));
        json_object_set_new(o, "in_flight", json_integer(0));
        json_object_set_new(o, "peak_in_flight", json_integer(0));
        json_object_set_new(o, "status", st);
        json_object_set_new(o, "last_body_len", json_integer(0));
        json_object_set_new(o, "distinct_bodies", json_integer(0));
        json_object_set_new(o, "arrivals_ms", arr);
        return o;
    }
    for (i = 0; i < 600; i++) {
        if (k->status[i]) {
            snprintf(code, sizeof(code), "%d", i);
            json_object_set_new(st, code, json_integer(k->status[i]));
        }
    }
    n = k->narrivals < ARRIVALS ? k->narrivals : ARRIVALS;
    start = k->narrivals - n;
    for (i = 0; i < n; i++) {
        json_array_append_new(arr, json_integer(
            (json_int_t) (k->arrivals[(start + i) % ARRIVALS] + 0.5)));
    }
    json_object_set_new(o, "requests", json_integer(k->requests));
    json_object_set_new(o, "in_flight", json_integer(k->in_flight));
    json_object_set_new(o, "peak_in_flight", json_integer(k->peak));
    json_object_set_new(o, "status", st);
    json_object_set_new(o, "last_body_len", json_integer(k->last_body_len));
    json_object_set_new(o, "distinct_bodies", json_integer(k->nhashes));
    json_object_set_new(o, "arrivals_ms", arr);
    return o;
}

static void
admin(struct evhttp_request *req, const char *path, struct evkeyvalq *q)
{
    const char  *v, *name;
    char         buf[4096], *tok, *save;
    key_t_      *k;
    json_t      *keys, *o;
    int          i;

    if (strcmp(path, "/__mock/stats") == 0) {
        name = query_get(q, "key");
        if (name) {
            send_json(req, key_json(key_get(name, 0)));
            return;
        }
        keys = json_object();
        for (i = 0; i < TABLE_SIZE; i++) {
            for (k = table[i]; k; k = k->next) {
                if (k->requests || k->in_flight) {
                    json_object_set_new(keys, k->name, key_json(k));
                }
            }
        }
        o = json_object();
        json_object_set_new(o, "keys", keys);
        json_object_set_new(o, "total", json_pack("{s:I, s:i, s:I}",
                            "requests", (json_int_t) total_requests,
                            "peak_in_flight", total_peak,
                            "429", (json_int_t) total_429));
        send_json(req, o);
        return;
    }

    if (strcmp(path, "/__mock/reset") == 0) {
        reset_all();
        send_json(req, json_pack("{s:b}", "reset", 1));
        return;
    }

    if (strcmp(path, "/__mock/config") == 0) {
        if ((v = query_get(q, "limit"))) limit_per_key = atoi(v);
        if ((v = query_get(q, "rate"))) rate_per_min = atoi(v);
        if ((v = query_get(q, "delay"))) default_delay = atoi(v);
        send_json(req, json_pack("{s:i, s:i, s:i}", "limit", limit_per_key,
                                 "rate", rate_per_min, "delay", default_delay));
        return;
    }

    if (strcmp(path, "/__mock/plan") == 0) {
        name = query_get(q, "key");
        v = query_get(q, "actions");
        if (name == NULL || v == NULL) {
            evhttp_send_error(req, 400, "key and actions are needed");
            return;
        }
        if (strcmp(name, "*") == 0) {
            if (global_plan == NULL) {
                global_plan = calloc(1, sizeof(key_t_));
                global_plan->name = strdup("*");
            }
            k = global_plan;
        } else {
            k = key_get(name, 1);
        }
        plan_clear(k);
        snprintf(buf, sizeof(buf), "%s", v);
        for (tok = strtok_r(buf, ",", &save); tok && k->plan_len < PLAN_MAX;
             tok = strtok_r(NULL, ",", &save))
        {
            k->plan[k->plan_len++] = strdup(tok);
        }
        send_json(req, json_pack("{s:s, s:i}", "key", name,
                                 "actions", k->plan_len));
        return;
    }

    evhttp_send_error(req, 404, "no such mock endpoint");
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
    const struct evhttp_uri  *uri = evhttp_request_get_evhttp_uri(req);
    const char               *path = evhttp_uri_get_path(uri);
    const char               *query = evhttp_uri_get_query(uri);
    const char               *hv, *p, *sv;
    struct evkeyvalq          q, *qp = NULL;
    struct evbuffer          *in = evhttp_request_get_input_buffer(req);
    struct evkeyvalq         *hin = evhttp_request_get_input_headers(req);
    char                      key[1024], vid[256], *d;
    size_t                    len;
    pending_t                *pd;
    key_t_                   *k;
    double                    now, earliest;
    int                       i, ra, delay;
    struct timeval            tv;

    (void) arg;

    if (path == NULL) {
        path = "/";
    }
    if (query && evhttp_parse_query_str(query, &q) == 0) {
        qp = &q;
    }

    if (strncmp(path, "/__mock/", 8) == 0) {
        admin(req, path, qp);
        goto done;
    }

    if (strncmp(path, "/api/v2/scripts", 15) != 0
        || (path[15] != '\0' && path[15] != '/'))
    {
        send_error(req, 404, -1, 0, 0);
        goto done;
    }

    len = evbuffer_get_length(in);
    if (len > MAX_BODY) {
        send_error(req, 413, -1, 0, 0);
        goto done;
    }

    pd = calloc(1, sizeof(pending_t));
    pd->req = req;

    /* the script id: the segment after /api/v2/scripts[/published] */
    p = path + 15;
    if (*p == '/') {
        p++;
    }
    if (strncmp(p, "published", 9) == 0 && (p[9] == '/' || p[9] == '\0')) {
        p += 9;
        if (*p == '/') {
            p++;
        }
    }
    for (d = pd->script_id; *p && *p != '/'
         && d < pd->script_id + sizeof(pd->script_id) - 1; )
    {
        *d++ = *p++;
    }
    *d = '\0';

    sv = query_get(qp, "scriptDataVersion");
    snprintf(pd->version, sizeof(pd->version), "%s", sv ? sv : "");
    body_version(in, vid, sizeof(vid));
    snprintf(key, sizeof(key), "%s:%s:%s", pd->script_id, pd->version, vid);

    k = key_get(key, 1);
    pd->key = k;
    now = now_ms();

    k->requests++;
    total_requests++;
    if (k->first_ms == 0) {
        k->first_ms = now;
    }
    k->arrivals[k->narrivals % ARRIVALS] = now - k->first_ms;
    k->narrivals++;
    k->last_body_len = len;
    if (len) {
        uint64_t  h = fnv(evbuffer_pullup(in, -1), len);

        for (i = 0; i < k->nhashes && k->hashes[i] != h; i++) { }
        if (i == k->nhashes && k->nhashes < BODY_HASHES) {
            k->hashes[k->nhashes++] = h;
        }
    }

    /* the action: the header, else the key's plan, else the global plan */
    hv = evhttp_find_header(hin, "X-Mock-Action");
    if (hv == NULL && k->plan_pos < k->plan_len) {
        hv = k->plan[k->plan_pos++];
    }
    if (hv == NULL && global_plan && global_plan->plan_pos < global_plan->plan_len) {
        hv = global_plan->plan[global_plan->plan_pos++];
    }
    parse_action(hv ? hv : "200", &pd->a);
    if ((sv = evhttp_find_header(hin, "X-Mock-Echo")) && atoi(sv)) {
        pd->a.echo = 1;
    }
    if ((sv = evhttp_find_header(hin, "X-Mock-Size"))) {
        pd->a.size = atol(sv);
    }

    /* the upstream's own limits answer at once */
    if (limit_per_key > 0 && k->in_flight >= limit_per_key) {
        earliest = 0;
        for (i = 0; i < 1024; i++) {
            if (k->finish[i] && (earliest == 0 || k->finish[i] < earliest)) {
                earliest = k->finish[i];
            }
        }
        ra = earliest > now ? (int) ((earliest - now + 999) / 1000) : 1;
        count_status(k, 429);
        send_error(req, 429, ra < 1 ? 1 : ra, 0, 0);
        finish(pd);
        goto done;
    }
    if (!rate_allows(req, &ra)) {
        count_status(k, 429);
        send_error(req, 429, ra, 0, 0);
        finish(pd);
        goto done;
    }

    delay = pd->a.delay >= 0 ? pd->a.delay : default_delay;

    k->in_flight++;
    total_in_flight++;
    pd->counted = 1;
    if (k->in_flight > k->peak) {
        k->peak = k->in_flight;
    }
    if (total_in_flight > total_peak) {
        total_peak = total_in_flight;
    }
    pd->end_ms = now + delay;
    for (i = 0; i < 1024; i++) {
        if (k->finish[i] == 0) {
            k->finish[i] = pd->end_ms;
            break;
        }
    }

    if (delay <= 0) {
        answer(pd);
        goto done;
    }

    pd->timer = evtimer_new(base, timer_cb, pd);
    tv.tv_sec = delay / 1000;
    tv.tv_usec = (delay % 1000) * 1000;
    evtimer_add(pd->timer, &tv);

done:
    if (qp) {
        evhttp_clear_headers(qp);
    }
}

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void) sig;
    (void) what;
    (void) arg;
    event_base_loopexit(base, NULL);
}

int
main(int argc, char **argv)
{
    const char                  *listen = "127.0.0.1:9001";
    char                         host[256], *colon;
    int                          i, port;
    struct evhttp               *http;
    struct evhttp_bound_socket  *bound;
    struct event                *sigterm, *sigint;
    struct sockaddr_storage      ss;
    socklen_t                    sl = sizeof(ss);

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            limit_per_key = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
            rate_per_min = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc) {
            default_delay = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = 1;
        } else {
            fprintf(stderr, "usage: %s --listen HOST:PORT [--limit N] "
                    "[--rate N] [--delay MS] [--quiet]\n", argv[0]);
            return 2;
        }
    }

    for (i = 0; i < (int) sizeof(pattern); i++) {
        pattern[i] = "0123456789abcdef"[i % 16];
    }

    snprintf(host, sizeof(host), "%s", listen);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        fprintf(stderr, "--listen needs HOST:PORT\n");
        return 2;
    }
    *colon = '\0';
    port = atoi(colon + 1);

    signal(SIGPIPE, SIG_IGN);

    base = event_base_new();
    http = evhttp_new(base);
    evhttp_set_max_body_size(http, 4 * MAX_BODY);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST
                               | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE
                               | EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(http, request_cb, NULL);

    bound = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t) port);
    if (bound == NULL) {
        fprintf(stderr, "cannot listen on %s: %s\n", listen, strerror(errno));
        return 1;
    }
    getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *) &ss, &sl);
    port = ntohs(((struct sockaddr_in *) &ss)->sin_port);

    sigterm = evsignal_new(base, SIGTERM, stop_cb, NULL);
    sigint = evsignal_new(base, SIGINT, stop_cb, NULL);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);

    printf("listening on %s:%d\n", host, port);
    fflush(stdout);
    (void) quiet;

    event_base_dispatch(base);

    event_free(sigterm);
    event_free(sigint);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
