/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * scripting-mock: a mock of the Genesys Cloud Scripts API (see UPSTREAM.md
 * and tools/mock/README.md).  It answers the Scripts endpoints, keeps a
 * concurrency limit per script-version key and a token bucket per bearer
 * token, both answered with Genesys' exact 429, injects faults on demand
 * (per request with X-Mock-Action, per key with a plan) and counts what it
 * saw per key, for tests and benchmarks.  POST /oauth/token stands for the
 * login host, so that Genesys' SDKs can log in.
 *
 * One thread, libevent's evhttp, jansson for JSON.  Every delay is a timer,
 * never a sleep, so the requests in flight really are in flight together.
 *
 *   cc -O2 -g -Wall -Wextra -o build/scripting-mock \
 *       tools/mock/scripting_mock.c -levent -ljansson
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define MAX_BODY        512000          /* Genesys' documented maximum */
#define MAX_ECHO_BODY   (64 * 1024 * 1024)  /* what evhttp accepts at all */
#define ARRIVALS        64
#define BODY_HASHES     64
#define STATUS_SLOTS    16
#define KEY_BUCKETS     65536
#define TOKEN_BUCKETS   4096
#define STATUS_RESET    (-1)            /* "status" of a connection reset */

typedef struct pending_s  pending_t;

typedef struct {
    int       code;
    uint64_t  n;
} status_count_t;

typedef struct key_s {
    struct key_s    *next;              /* hash chain */
    uint64_t         hash;
    char            *name;

    uint64_t         requests;
    int              in_flight;
    int              peak;
    status_count_t   status[STATUS_SLOTS];
    int              nstatus;
    size_t           last_body_len;
    uint64_t         bodies[BODY_HASHES];
    int              nbodies;
    double           first_ms;          /* < 0: no request since the reset */
    double           arrivals[ARRIVALS];    /* a ring */
    uint64_t         narrivals;

    pending_t       *pending;           /* the requests in flight */

    char           **plan;
    int              plan_len;
    int              plan_pos;
} key_t_;

typedef struct bucket_s {
    struct bucket_s  *next;
    char             *token;
    double            tokens;
    double            last_ms;
} bucket_t;

typedef struct {
    int   status;       /* 200, 429, 5xx ... */
    int   ra;           /* Retry-After seconds, -1: none */
    int   ra_date;      /* Retry-After as an HTTP-date */
    int   ra_junk;      /* Retry-After: soon */
    int   delay;        /* ms, -1: the default */
    int   echo;
    int   echo_headers; /* the request's headers, as JSON */
    long  size;         /* -1: the usual body */
    int   reset;
} action_t;

struct pending_s {
    pending_t              *prev, *next;    /* in the key's in-flight list */
    struct evhttp_request  *req;
    struct event           *timer;
    key_t_                 *key;
    action_t                a;
    double                  start_ms;
    double                  end_ms;
    char                    script_id[256];
    char                    version[256];
};

static struct event_base  *base;
static key_t_             *keys[KEY_BUCKETS];
static bucket_t           *buckets[TOKEN_BUCKETS];
static key_t_              global_plan;     /* key=*: any key's next requests */
static int                 limit_per_key;
static int                 rate_per_min;
static int                 default_delay;
static int                 quiet;
static uint64_t            total_requests, total_429, total_tokens;
static int                 total_in_flight, total_peak;
static struct evbuffer    *scratch;
static char                pattern[65536];  /* a multiple of 16 bytes */
static uint64_t            rnd_state;


static double
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}


/* ceil() of a positive double, without libm */
static int
up(double x)
{
    int  i = (int) x;

    return i + (x > i);
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


/* splitmix64, seeded from /dev/urandom */
static uint64_t
rnd(void)
{
    uint64_t  z = (rnd_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}


static void
rnd_seed(void)
{
    int  fd = open("/dev/urandom", O_RDONLY);

    if (fd < 0 || read(fd, &rnd_state, sizeof(rnd_state)) != sizeof(rnd_state)) {
        rnd_state = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
    }
    if (fd >= 0) {
        close(fd);
    }
}


/* a random, version 4 style uuid: 36 characters and a NUL */
static void
uuid(char *out)
{
    static const char  hex[] = "0123456789abcdef";
    uint64_t           a = rnd(), b = rnd();
    unsigned char      v[16];
    int                i, j;

    for (i = 0; i < 8; i++) {
        v[i] = (unsigned char) (a >> (i * 8));
        v[i + 8] = (unsigned char) (b >> (i * 8));
    }
    v[6] = (v[6] & 0x0f) | 0x40;
    v[8] = (v[8] & 0x3f) | 0x80;

    for (i = 0, j = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[j++] = '-';
        }
        out[j++] = hex[v[i] >> 4];
        out[j++] = hex[v[i] & 0x0f];
    }
    out[j] = '\0';
}


/* the keys */

static key_t_ *
key_get(const char *name, int create)
{
    uint64_t  h = fnv(name, strlen(name));
    key_t_   *k;

    for (k = keys[h % KEY_BUCKETS]; k; k = k->next) {
        if (k->hash == h && strcmp(k->name, name) == 0) {
            return k;
        }
    }
    if (!create) {
        return NULL;
    }
    k = calloc(1, sizeof(key_t_));
    if (k == NULL || (k->name = strdup(name)) == NULL) {
        perror("scripting-mock: out of memory");
        exit(1);
    }
    k->hash = h;
    k->first_ms = -1;
    k->next = keys[h % KEY_BUCKETS];
    keys[h % KEY_BUCKETS] = k;
    return k;
}


static void
plan_clear(key_t_ *k)
{
    int  i;

    for (i = 0; i < k->plan_len; i++) {
        free(k->plan[i]);
    }
    free(k->plan);
    k->plan = NULL;
    k->plan_len = 0;
    k->plan_pos = 0;
}


static void
plan_set(key_t_ *k, const char *actions)
{
    const char  *p = actions, *e;
    int          n = 1;

    plan_clear(k);
    for (e = actions; *e; e++) {
        n += (*e == ',');
    }
    k->plan = calloc(n, sizeof(char *));
    while (*p) {
        e = strchr(p, ',');
        if (e == NULL) {
            e = p + strlen(p);
        }
        while (p < e && isspace((unsigned char) *p)) {
            p++;
        }
        if (e > p) {
            k->plan[k->plan_len++] = strndup(p, e - p);
        }
        p = *e ? e + 1 : e;
    }
}


static const char *
plan_next(key_t_ *k)
{
    return k->plan_pos < k->plan_len ? k->plan[k->plan_pos++] : NULL;
}


static void
count_status(key_t_ *k, int code)
{
    int  i;

    if (code == 429) {
        total_429++;
    }
    for (i = 0; i < k->nstatus; i++) {
        if (k->status[i].code == code) {
            k->status[i].n++;
            return;
        }
    }
    if (k->nstatus < STATUS_SLOTS) {
        k->status[k->nstatus].code = code;
        k->status[k->nstatus].n = 1;
        k->nstatus++;
    }
}


static void
reset_all(void)
{
    int        i;
    key_t_    *k, *next, **keep;
    bucket_t  *b, *bn;

    for (i = 0; i < KEY_BUCKETS; i++) {
        keep = &keys[i];
        for (k = keys[i]; k; k = next) {
            next = k->next;
            plan_clear(k);
            if (k->in_flight) {
                /* the answers still to come find their key again */
                k->requests = 0;
                k->peak = k->in_flight;
                k->nstatus = 0;
                k->last_body_len = 0;
                k->nbodies = 0;
                k->first_ms = -1;
                k->narrivals = 0;
                *keep = k;
                keep = &k->next;
                continue;
            }
            free(k->name);
            free(k);
        }
        *keep = NULL;
    }

    for (i = 0; i < TOKEN_BUCKETS; i++) {
        for (b = buckets[i]; b; b = bn) {
            bn = b->next;
            free(b->token);
            free(b);
        }
        buckets[i] = NULL;
    }

    plan_clear(&global_plan);
    total_requests = 0;
    total_429 = 0;
    total_tokens = 0;
    total_peak = total_in_flight;
}


/* the actions: "429/ra=5/delay=100", "200/echo", "reset", "size=1000" ... */

static long
num(const char *s, long dflt)
{
    char  *end;
    long   v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || v < 0) {
        return dflt;
    }
    return v;
}


static void
parse_action(const char *s, action_t *a)
{
    char  buf[512], *tok, *save;
    int   ra_set = 0;

    memset(a, 0, sizeof(*a));
    a->status = 200;
    a->ra = -1;
    a->delay = -1;
    a->size = -1;

    snprintf(buf, sizeof(buf), "%s", s);

    for (tok = strtok_r(buf, "/ \t", &save); tok;
         tok = strtok_r(NULL, "/ \t", &save))
    {
        if (isdigit((unsigned char) tok[0])) {
            a->status = (int) num(tok, 200);
        } else if (strcasecmp(tok, "reset") == 0) {
            a->reset = 1;
        } else if (strcasecmp(tok, "echo") == 0) {
            a->echo = 1;
        } else if (strcasecmp(tok, "headers") == 0) {
            a->echo_headers = 1;
        } else if (strcasecmp(tok, "ra=none") == 0) {
            a->ra = -1;
            ra_set = 1;
        } else if (strcasecmp(tok, "ra=junk") == 0) {
            a->ra_junk = 1;
            ra_set = 1;
        } else if (strncasecmp(tok, "ra=", 3) == 0) {
            a->ra = (int) num(tok + 3, 1);
            ra_set = 1;
        } else if (strncasecmp(tok, "date=", 5) == 0) {
            a->ra = (int) num(tok + 5, 1);
            a->ra_date = 1;
            ra_set = 1;
        } else if (strncasecmp(tok, "delay=", 6) == 0) {
            a->delay = (int) num(tok + 6, -1);
        } else if (strncasecmp(tok, "size=", 5) == 0) {
            a->size = num(tok + 5, -1);
        }
        /* anything else is ignored */
    }

    if (a->status < 100 || a->status > 599) {
        a->status = 200;
    }
    if (!ra_set && a->status == 429) {
        /* Genesys' 429 comes with a Retry-After, by default 1 s */
        a->ra = 1;
    }
}


/* the answers */

static void
add_id(struct evhttp_request *req, char *id)
{
    uuid(id);
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "ININ-Correlation-Id", id);
}


static void
log_answer(pending_t *p, struct evhttp_request *req, int status)
{
    char  code[16];

    if (quiet) {
        return;
    }
    if (status == STATUS_RESET) {
        snprintf(code, sizeof(code), "reset");
    } else {
        snprintf(code, sizeof(code), "%d", status);
    }
    fprintf(stderr, "%s %s key=\"%s\" -> %s %.0fms\n",
            evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "GET",
            evhttp_request_get_uri(req), p && p->key ? p->key->name : "",
            code, p ? now_ms() - p->start_ms : 0.0);
}


/*
 * Genesys' error answer.  For the 429 with a Retry-After the headers are,
 * in this order,
 *
 *   ININ-Correlation-Id, Retry-After, Cache-Control, Content-Type
 *
 * and the body is one line, no newline at the end, keys in this order:
 *
 *   {"message":"Rate limit exceeded the maximum. Retry the request in [42]
 *   seconds","code":"too.many.requests.retry.after","status":429,
 *   "contextId":"<the ININ-Correlation-Id>","details":[],"errors":[]}
 */
static void
send_error(struct evhttp_request *req, int status, int ra, int ra_date,
    int ra_junk)
{
    char               id[40], body[512], hdr[64], msgbuf[128];
    const char        *code, *msg, *reason;
    struct evkeyvalq  *h = evhttp_request_get_output_headers(req);
    time_t             t;
    struct tm          tm;
    int                with_ra = (ra >= 0 || ra_junk);
    int                n;

    add_id(req, id);

    switch (status) {
    case 429:
        reason = "Too Many Requests";
        if (with_ra) {
            code = "too.many.requests.retry.after";
            snprintf(msgbuf, sizeof(msgbuf), "Rate limit exceeded the maximum."
                     " Retry the request in [%d] seconds", ra_junk ? 1 : ra);
            msg = msgbuf;
        } else {
            code = "too.many.requests";
            msg = "Rate limit exceeded the maximum";
        }
        break;
    case 400:
        reason = "Bad Request"; code = "bad.request";
        msg = "The request could not be understood by the server due to "
              "malformed syntax.";
        break;
    case 401:
        reason = "Unauthorized"; code = "authentication.required";
        msg = "No authentication bearer token specified in authorization "
              "header.";
        break;
    case 403:
        reason = "Forbidden"; code = "missing.permissions";
        msg = "Unable to perform the requested action.";
        break;
    case 404:
        reason = "Not Found"; code = "not.found";
        msg = "The requested resource was not found.";
        break;
    case 413:
        reason = "Payload Too Large"; code = "request.entity.too.large";
        msg = "The request is over the size limit. Maximum bytes: 512000";
        break;
    case 500:
        reason = "Internal Server Error"; code = "internal.server.error";
        msg = "The server encountered an unexpected condition which "
              "prevented it from fulfilling the request.";
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
    default:
        reason = "Error"; code = "error"; msg = "Error";
    }

    if (with_ra && (status == 429 || status >= 500)) {
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
    if (status == 429 || status >= 500) {
        evhttp_add_header(h, "Cache-Control",
                          "no-cache, no-store, must-revalidate");
    }
    evhttp_add_header(h, "Content-Type", "application/json");

    n = snprintf(body, sizeof(body),
                 "{\"message\":\"%s\",\"code\":\"%s\",\"status\":%d,"
                 "\"contextId\":\"%s\",\"details\":[],\"errors\":[]}",
                 msg, code, status, id);

    evbuffer_add(scratch, body, n);
    evhttp_send_reply(req, status, reason, scratch);
    evbuffer_drain(scratch, evbuffer_get_length(scratch));
}


static void
send_json(struct evhttp_request *req, json_t *j)
{
    char  *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char   id[40];

    add_id(req, id);
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Type", "application/json");
    evbuffer_add(scratch, s, strlen(s));
    evhttp_send_reply(req, 200, "OK", scratch);
    evbuffer_drain(scratch, evbuffer_get_length(scratch));
    free(s);
    json_decref(j);
}


/* a request leaves the flight */
static void
done(pending_t *p)
{
    key_t_  *k = p->key;

    if (p->prev) {
        p->prev->next = p->next;
    } else {
        k->pending = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    }
    k->in_flight--;
    total_in_flight--;

    if (p->timer) {
        event_free(p->timer);
    }
    free(p);
}


static void
reset_connection(struct evhttp_request *req)
{
    struct evhttp_connection  *conn = evhttp_request_get_connection(req);
    struct bufferevent        *bev;
    struct linger              lg = { 1, 0 };
    evutil_socket_t            fd;
    int                        dummy;

    if (conn == NULL) {
        /* the client has gone already; the request is ours to free */
        evhttp_request_free(req);
        return;
    }
    bev = evhttp_connection_get_bufferevent(conn);
    fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0
        && (dummy = open("/dev/null", O_RDWR)) >= 0)
    {
        /*
         * evhttp_connection_free() would shutdown() the socket first, a FIN
         * then the RST; closing the socket here, under the same descriptor
         * number that now points at /dev/null, sends the RST alone, and the
         * descriptor evhttp then shuts down and closes is the dummy one.
         */
        dup2(dummy, fd);
        close(dummy);
    }
    /* frees the request too */
    evhttp_connection_free(conn);
}


/* a string made safe inside a JSON string: quotes, backslashes, controls */
static const char *
json_safe(const char *s, char *buf, size_t size)
{
    size_t  n = 0;

    for (; *s && n + 7 < size; s++) {
        if (*s == '"' || *s == '\\') {
            buf[n++] = '\\';
            buf[n++] = *s;
        } else if ((unsigned char) *s < 0x20) {
            n += snprintf(buf + n, size - n, "\\u%04x", (unsigned char) *s);
        } else {
            buf[n++] = *s;
        }
    }
    buf[n] = '\0';
    return buf;
}


/* [["Name","value"],...]: the request's headers, in order, repeats kept */

static void
echo_headers(struct evhttp_request *req, struct evbuffer *out)
{
    struct evkeyval  *kv;
    json_t           *all;
    char             *s;

    all = json_array();

    for (kv = evhttp_request_get_input_headers(req)->tqh_first; kv;
         kv = kv->next.tqe_next)
    {
        json_array_append_new(all, json_pack("[ss]", kv->key, kv->value));
    }

    s = json_dumps(all, JSON_COMPACT);
    if (s) {
        evbuffer_add(out, s, strlen(s));
        free(s);
    }
    json_decref(all);
}


static void
answer(pending_t *p)
{
    struct evhttp_request  *req = p->req;
    struct evkeyvalq       *h = evhttp_request_get_output_headers(req);
    struct evbuffer        *in;
    const char             *type;
    char                    id[40], body[4096], sid[1600], ver[1600];
    long                    left;
    size_t                  n;
    int                     len;

    if (p->a.reset) {
        count_status(p->key, STATUS_RESET);
        log_answer(p, req, STATUS_RESET);
        reset_connection(req);
        done(p);
        return;
    }

    count_status(p->key, p->a.status);
    log_answer(p, req, p->a.status);

    if (p->a.status != 200) {
        send_error(req, p->a.status, p->a.ra, p->a.ra_date, p->a.ra_junk);
        done(p);
        return;
    }

    add_id(req, id);

    if (p->a.echo_headers) {
        evhttp_add_header(h, "Content-Type", "application/json");
        echo_headers(req, scratch);

    } else if (p->a.echo) {
        in = evhttp_request_get_input_buffer(req);
        type = evhttp_find_header(evhttp_request_get_input_headers(req),
                                  "Content-Type");
        evhttp_add_header(h, "Content-Type",
                          type ? type : "application/octet-stream");
        evbuffer_add_buffer(scratch, in);

    } else if (p->a.size >= 0) {
        evhttp_add_header(h, "Content-Type", "text/plain");
        for (left = p->a.size; left > 0; left -= n) {
            n = left > (long) sizeof(pattern) ? sizeof(pattern) : (size_t) left;
            evbuffer_add_reference(scratch, pattern, n, NULL, NULL);
        }

    } else {
        evhttp_add_header(h, "Content-Type", "application/json");
        json_safe(p->script_id, sid, sizeof(sid));
        json_safe(p->version, ver, sizeof(ver));
        if (evhttp_request_get_command(req) == EVHTTP_REQ_POST
            && strstr(evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)),
                      "/export"))
        {
            len = snprintf(body, sizeof(body),
                           "{\"url\":\"https://example.invalid/export/%s.json\"}",
                           sid);
        } else {
            len = snprintf(body, sizeof(body),
                           "{\"id\":\"%s\",\"name\":\"Script %s\","
                           "\"versionId\":\"%s\"}",
                           sid, sid, ver);
        }
        evbuffer_add(scratch, body, len);
    }

    evhttp_send_reply(req, 200, "OK", scratch);
    evbuffer_drain(scratch, evbuffer_get_length(scratch));
    done(p);
}


static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    answer(arg);
}


/* the upstream's own limits */

static int
limit_retry_after(key_t_ *k, double now)
{
    pending_t  *p;
    double      earliest = -1;
    int         ra;

    for (p = k->pending; p; p = p->next) {
        if (earliest < 0 || p->end_ms < earliest) {
            earliest = p->end_ms;
        }
    }
    ra = earliest > now ? up((earliest - now) / 1000.0) : 1;
    return ra < 1 ? 1 : ra;
}


/* 1: allowed; 0: over the rate, *ra the seconds until a token */
static int
rate_allows(struct evhttp_request *req, double now, int *ra)
{
    const char  *auth;
    bucket_t    *b;
    size_t       h;
    double       per_ms;

    if (rate_per_min <= 0) {
        return 1;
    }
    auth = evhttp_find_header(evhttp_request_get_input_headers(req),
                              "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
        return 1;
    }
    auth += 7;
    while (*auth == ' ') {
        auth++;
    }

    h = fnv(auth, strlen(auth)) % TOKEN_BUCKETS;
    for (b = buckets[h]; b; b = b->next) {
        if (strcmp(b->token, auth) == 0) {
            break;
        }
    }
    if (b == NULL) {
        b = calloc(1, sizeof(bucket_t));
        b->token = strdup(auth);
        b->tokens = rate_per_min;
        b->last_ms = now;
        b->next = buckets[h];
        buckets[h] = b;
    }

    per_ms = rate_per_min / 60000.0;
    b->tokens += (now - b->last_ms) * per_ms;
    if (b->tokens > rate_per_min) {
        b->tokens = rate_per_min;
    }
    b->last_ms = now;

    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 1;
    }
    *ra = up((1 - b->tokens) / per_ms / 1000.0);
    if (*ra < 1) {
        *ra = 1;
    }
    return 0;
}


/* the versionId (and scriptId) strings of a JSON body */
static void
body_version(const unsigned char *body, size_t len, char *out, size_t size,
    char *sid, size_t sid_size)
{
    json_t        *j, *v;
    json_error_t   err;
    size_t         i;

    out[0] = '\0';
    for (i = 0; i < len && isspace(body[i]); i++) { /* void */ }
    if (i == len || body[i] != '{') {
        return;
    }
    j = json_loadb((const char *) body, len, JSON_ALLOW_NUL, &err);
    if (j == NULL) {
        return;
    }
    v = json_object_get(j, "versionId");
    if (json_is_string(v)) {
        snprintf(out, size, "%s", json_string_value(v));
    }
    v = json_object_get(j, "scriptId");
    if (sid[0] == '\0' && json_is_string(v)) {
        /* POST /api/v2/scripts/published names its script in the body */
        snprintf(sid, sid_size, "%s", json_string_value(v));
    }
    json_decref(j);
}


/* the accounting endpoint */

static json_t *
key_json(key_t_ *k)
{
    json_t    *o = json_object(), *st = json_object(), *arr = json_array();
    char       code[16];
    int        i;
    uint64_t   n, start;

    if (k != NULL) {
        for (i = 0; i < k->nstatus; i++) {
            if (k->status[i].code == STATUS_RESET) {
                snprintf(code, sizeof(code), "reset");
            } else {
                snprintf(code, sizeof(code), "%d", k->status[i].code);
            }
            json_object_set_new(st, code, json_integer(k->status[i].n));
        }
        n = k->narrivals < ARRIVALS ? k->narrivals : ARRIVALS;
        start = k->narrivals - n;
        for (; start < k->narrivals; start++) {
            json_array_append_new(arr, json_integer(
                (json_int_t) (k->arrivals[start % ARRIVALS] + 0.5)));
        }
    }

    json_object_set_new(o, "requests", json_integer(k ? k->requests : 0));
    json_object_set_new(o, "in_flight", json_integer(k ? k->in_flight : 0));
    json_object_set_new(o, "peak_in_flight", json_integer(k ? k->peak : 0));
    json_object_set_new(o, "status", st);
    json_object_set_new(o, "last_body_len",
                        json_integer(k ? (json_int_t) k->last_body_len : 0));
    json_object_set_new(o, "distinct_bodies", json_integer(k ? k->nbodies : 0));
    json_object_set_new(o, "arrivals_ms", arr);
    return o;
}


static void
admin(struct evhttp_request *req, const char *path, struct evkeyvalq *q)
{
    const char  *v, *name;
    key_t_      *k;
    json_t      *ks, *o;
    int          i;

    if (strcmp(path, "/__mock/stats") == 0) {
        if (q && (name = evhttp_find_header(q, "key"))) {
            send_json(req, key_json(key_get(name, 0)));
            return;
        }
        ks = json_object();
        for (i = 0; i < KEY_BUCKETS; i++) {
            for (k = keys[i]; k; k = k->next) {
                if (k->requests || k->in_flight) {
                    json_object_set_new(ks, k->name, key_json(k));
                }
            }
        }
        o = json_object();
        json_object_set_new(o, "keys", ks);
        json_object_set_new(o, "total", json_pack("{s:I, s:i, s:i, s:I, s:I}",
                            "requests", (json_int_t) total_requests,
                            "in_flight", total_in_flight,
                            "peak_in_flight", total_peak,
                            "429", (json_int_t) total_429,
                            "tokens", (json_int_t) total_tokens));
        send_json(req, o);
        return;
    }

    if (strcmp(path, "/__mock/reset") == 0) {
        reset_all();
        send_json(req, json_pack("{s:b}", "reset", 1));
        return;
    }

    if (strcmp(path, "/__mock/config") == 0) {
        if (q && (v = evhttp_find_header(q, "limit"))) {
            limit_per_key = (int) num(v, limit_per_key);
        }
        if (q && (v = evhttp_find_header(q, "rate"))) {
            rate_per_min = (int) num(v, rate_per_min);
        }
        if (q && (v = evhttp_find_header(q, "delay"))) {
            default_delay = (int) num(v, default_delay);
        }
        send_json(req, json_pack("{s:i, s:i, s:i}", "limit", limit_per_key,
                                 "rate", rate_per_min, "delay", default_delay));
        return;
    }

    if (strcmp(path, "/__mock/plan") == 0) {
        name = q ? evhttp_find_header(q, "key") : NULL;
        v = q ? evhttp_find_header(q, "actions") : NULL;
        if (name == NULL) {
            evhttp_send_error(req, 400, "a key is needed");
            return;
        }
        k = strcmp(name, "*") == 0 ? &global_plan : key_get(name, 1);
        plan_set(k, v ? v : "");
        send_json(req, json_pack("{s:s, s:i}", "key", name,
                                 "actions", k->plan_len));
        return;
    }

    evhttp_send_error(req, 404, "no such mock endpoint");
}


/*
 * The login host's POST /oauth/token, the client credentials grant only,
 * enough for an SDK to log in: any client id and secret in
 * "Authorization: Basic", a form body with grant_type=client_credentials.
 * Its errors are in the login host's shape, not the API's.
 */
static void
oauth_token(struct evhttp_request *req)
{
    struct evkeyvalq  *hin = evhttp_request_get_input_headers(req);
    struct evbuffer   *in = evhttp_request_get_input_buffer(req);
    struct evkeyvalq   form;
    const char        *auth, *grant, *err, *desc;
    char               body[4096], token[80], id[40];
    size_t             len;
    int                status, i;

    auth = evhttp_find_header(hin, "Authorization");

    len = evbuffer_get_length(in);
    if (len >= sizeof(body)) {
        len = sizeof(body) - 1;
    }
    evbuffer_copyout(in, body, len);
    body[len] = '\0';

    /* it initializes the list, and empties it again on an error */
    grant = NULL;
    if (evhttp_parse_query_str(body, &form) == 0) {
        grant = evhttp_find_header(&form, "grant_type");
    }

    if (auth == NULL || strncasecmp(auth, "Basic ", 6) != 0
        || auth[6] == '\0')
    {
        status = 401;
        err = "invalid_client";
        desc = "client authentication failed";

    } else if (grant == NULL || strcmp(grant, "client_credentials") != 0) {
        status = 400;
        err = "unsupported_grant_type";
        desc = "grant type not supported";

    } else {
        status = 200;
        err = NULL;
        desc = NULL;
    }

    evhttp_clear_headers(&form);

    log_answer(NULL, req, status);

    if (err) {
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Content-Type", "application/json");
        evbuffer_add_printf(scratch, "{\"error\":\"%s\","
                            "\"description\":\"%s\","
                            "\"error_description\":\"%s\"}",
                            err, desc, desc);
        evhttp_send_reply(req, status,
                          status == 401 ? "Unauthorized" : "Bad Request",
                          scratch);
        evbuffer_drain(scratch, evbuffer_get_length(scratch));
        return;
    }

    /* 64 random hex digits */
    for (i = 0; i < 2; i++) {
        uuid(id);
        snprintf(token + i * 32, sizeof(token) - i * 32,
                 "%.8s%.4s%.4s%.4s%.12s",
                 id, id + 9, id + 14, id + 19, id + 24);
    }

    total_tokens++;

    send_json(req, json_pack("{s:s, s:s, s:i}", "access_token", token,
                             "token_type", "bearer", "expires_in", 86400));
}


/* the Scripts API */

static void
scripts(struct evhttp_request *req, const char *path, struct evkeyvalq *q)
{
    struct evkeyvalq  *hin = evhttp_request_get_input_headers(req);
    struct evbuffer   *in = evhttp_request_get_input_buffer(req);
    const char        *p, *hv, *sv;
    unsigned char     *body = NULL;
    char               key[1024], vid[256], *d;
    size_t             len;
    uint64_t           bh;
    pending_t         *pd;
    key_t_            *k;
    double             now = now_ms();
    int                i, ra, delay;
    struct timeval     tv;

    pd = calloc(1, sizeof(pending_t));
    if (pd == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    pd->req = req;
    pd->start_ms = now;

    /* the script id: the segment after /api/v2/scripts[/published]/ */
    p = path + sizeof("/api/v2/scripts") - 1;
    if (*p == '/') {
        p++;
    }
    if (strncmp(p, "published", 9) == 0 && (p[9] == '/' || p[9] == '\0')) {
        p += 9;
        if (*p == '/') {
            p++;
        }
    }
    for (d = pd->script_id;
         *p && *p != '/' && d < pd->script_id + sizeof(pd->script_id) - 1; )
    {
        *d++ = *p++;
    }
    *d = '\0';

    sv = q ? evhttp_find_header(q, "scriptDataVersion") : NULL;
    snprintf(pd->version, sizeof(pd->version), "%s", sv ? sv : "");

    /* the key, before the body's scriptId may name the answer's script */
    len = evbuffer_get_length(in);
    vid[0] = '\0';
    i = snprintf(key, sizeof(key), "%s:%s:", pd->script_id, sv ? sv : "");
    if (len) {
        body = evbuffer_pullup(in, -1);
        body_version(body, len, vid, sizeof(vid),
                     pd->script_id, sizeof(pd->script_id));
    }
    if (i > 0 && (size_t) i < sizeof(key)) {
        snprintf(key + i, sizeof(key) - i, "%s", vid);
    }
    if (pd->version[0] == '\0') {
        snprintf(pd->version, sizeof(pd->version), "%s", vid);
    }

    /* the accounting of the arrival */
    k = key_get(key, 1);
    pd->key = k;
    k->requests++;
    total_requests++;
    if (k->first_ms < 0) {
        k->first_ms = now;
    }
    k->arrivals[k->narrivals++ % ARRIVALS] = now - k->first_ms;
    k->last_body_len = len;
    if (len) {
        bh = fnv(body, len);
        for (i = 0; i < k->nbodies && k->bodies[i] != bh; i++) { /* void */ }
        if (i == k->nbodies && k->nbodies < BODY_HASHES) {
            k->bodies[k->nbodies++] = bh;
        }
    }

    /* the upstream's own limits answer at once, without taking a slot */
    ra = 0;
    if ((limit_per_key > 0 && k->in_flight >= limit_per_key
         && (ra = limit_retry_after(k, now)))
        || !rate_allows(req, now, &ra))
    {
        count_status(k, 429);
        log_answer(pd, req, 429);
        send_error(req, 429, ra, 0, 0);
        free(pd);
        return;
    }

    /* the action: the header, else the key's plan, else the global plan */
    hv = evhttp_find_header(hin, "X-Mock-Action");
    if (hv == NULL) {
        hv = plan_next(k);
    }
    if (hv == NULL) {
        hv = plan_next(&global_plan);
    }
    if (hv) {
        parse_action(hv, &pd->a);
    } else {
        memset(&pd->a, 0, sizeof(action_t));
        pd->a.status = 200;
        pd->a.ra = -1;
        pd->a.delay = -1;
        pd->a.size = -1;
    }
    if ((sv = evhttp_find_header(hin, "X-Mock-Echo")) && num(sv, 0) > 0) {
        pd->a.echo = 1;
    }
    if ((sv = evhttp_find_header(hin, "X-Mock-Echo-Headers"))
        && num(sv, 0) > 0)
    {
        pd->a.echo_headers = 1;
    }
    if ((sv = evhttp_find_header(hin, "X-Mock-Size"))) {
        pd->a.size = num(sv, -1);
    }

    /* Genesys' maximum body; an echo takes more, to prove big replays */
    if (len > MAX_BODY && !pd->a.echo && !pd->a.reset) {
        pd->a.status = 413;
        pd->a.ra = -1;
        pd->a.delay = 0;
    }

    /* in flight from now until answered */
    delay = pd->a.delay >= 0 ? pd->a.delay : default_delay;
    pd->end_ms = now + delay;
    pd->next = k->pending;
    if (k->pending) {
        k->pending->prev = pd;
    }
    k->pending = pd;
    k->in_flight++;
    total_in_flight++;
    if (k->in_flight > k->peak) {
        k->peak = k->in_flight;
    }
    if (total_in_flight > total_peak) {
        total_peak = total_in_flight;
    }

    if (delay <= 0 && !pd->a.reset) {
        answer(pd);
        return;
    }

    /* a reset is never done inside evhttp's callback: a timer, 0 ms or more */
    pd->timer = evtimer_new(base, timer_cb, pd);
    tv.tv_sec = delay / 1000;
    tv.tv_usec = (delay % 1000) * 1000;
    evtimer_add(pd->timer, &tv);
}


static void
request_cb(struct evhttp_request *req, void *arg)
{
    const struct evhttp_uri  *uri = evhttp_request_get_evhttp_uri(req);
    const char               *path = evhttp_uri_get_path(uri);
    const char               *query = evhttp_uri_get_query(uri);
    struct evkeyvalq          q, *qp = NULL;

    (void) arg;

    if (path == NULL || *path == '\0') {
        path = "/";
    }
    if (query && *query && evhttp_parse_query_str(query, &q) == 0) {
        qp = &q;
    }

    if (strncmp(path, "/__mock/", 8) == 0) {
        admin(req, path, qp);

    } else if (strncmp(path, "/api/v2/scripts", 15) == 0
               && (path[15] == '\0' || path[15] == '/'))
    {
        scripts(req, path, qp);

    } else if (strcmp(path, "/oauth/token") == 0
               && evhttp_request_get_command(req) == EVHTTP_REQ_POST)
    {
        oauth_token(req);

    } else {
        log_answer(NULL, req, 404);
        send_error(req, 404, -1, 0, 0);
    }

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


static void
usage(const char *me)
{
    fprintf(stderr, "usage: %s --listen HOST:PORT [--limit N] [--rate N]"
            " [--delay MS] [--quiet]\n", me);
    exit(2);
}


int
main(int argc, char **argv)
{
    const char                  *listen = NULL;
    char                         host[256], *colon;
    int                          i, port;
    struct evhttp               *http;
    struct evhttp_bound_socket  *bound;
    struct event                *sigterm, *sigint;
    struct event_config         *cfg;
    struct sockaddr_storage      ss;
    socklen_t                    sl = sizeof(ss);

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            limit_per_key = (int) num(argv[++i], 0);
        } else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
            rate_per_min = (int) num(argv[++i], 0);
        } else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc) {
            default_delay = (int) num(argv[++i], 0);
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = 1;
        } else {
            usage(argv[0]);
        }
    }
    if (listen == NULL) {
        usage(argv[0]);
    }

    snprintf(host, sizeof(host), "%s", listen);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        fprintf(stderr, "scripting-mock: --listen needs HOST:PORT\n");
        return 2;
    }
    *colon = '\0';
    port = (int) num(colon + 1, -1);
    if (port < 0 || port > 65535) {
        fprintf(stderr, "scripting-mock: bad port in \"%s\"\n", listen);
        return 2;
    }
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        host[strlen(host) - 1] = '\0';
        memmove(host, host + 1, strlen(host));
    }

    for (i = 0; i < (int) sizeof(pattern); i++) {
        pattern[i] = "0123456789abcdef"[i % 16];
    }
    rnd_seed();
    signal(SIGPIPE, SIG_IGN);

    /*
     * Precise timers (a timerfd with epoll): by default libevent rounds an
     * epoll wait up to whole milliseconds and a "50 ms" answer takes 51 or
     * 52, which would cost every setup of a benchmark 2 to 4 % of the
     * capacity it is measured against.
     */
    cfg = event_config_new();
    if (cfg) {
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
        base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    scratch = evbuffer_new();
    http = base ? evhttp_new(base) : NULL;
    if (base == NULL || scratch == NULL || http == NULL) {
        fprintf(stderr, "scripting-mock: cannot start libevent\n");
        return 1;
    }
    evhttp_set_max_body_size(http, MAX_ECHO_BODY);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST
                               | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE
                               | EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(http, "application/json");
    evhttp_set_gencb(http, request_cb, NULL);

    bound = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t) port);
    if (bound == NULL) {
        fprintf(stderr, "scripting-mock: cannot listen on %s: %s\n",
                listen, strerror(errno));
        return 1;
    }
    if (getsockname(evhttp_bound_socket_get_fd(bound),
                    (struct sockaddr *) &ss, &sl) == 0)
    {
        port = ss.ss_family == AF_INET6
               ? ntohs(((struct sockaddr_in6 *) &ss)->sin6_port)
               : ntohs(((struct sockaddr_in *) &ss)->sin_port);
    }

    sigterm = evsignal_new(base, SIGTERM, stop_cb, NULL);
    sigint = evsignal_new(base, SIGINT, stop_cb, NULL);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);

    printf("listening on %s:%d\n", host, port);
    fflush(stdout);

    event_base_dispatch(base);

    event_free(sigterm);
    event_free(sigint);
    evhttp_free(http);
    evbuffer_free(scratch);
    event_base_free(base);
    return 0;
}
