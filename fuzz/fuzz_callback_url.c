
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Callback URLs: the input, split on "\n", is up to four callback_allow
 * prefixes, then the URL (the last line).  Each prefix goes through
 * ngx_http_scripting_gate_callback_prefix(), the URL through
 * ngx_http_scripting_gate_callback_check() against those accepted.
 *
 * The test reads an accepted URL with its own parser (RFC 3986's split,
 * no libcurl) and checks what the code promises: the URL is printable
 * ASCII without "\", a user or a fragment; its scheme, host and port are
 * those of a prefix; its path holds no ";", no escaped ".", "%", "/" or
 * "\", no escaped byte of 0x80 or more, no dot segment, and, %-decoded, is
 * the prefix's path followed by nothing or by a new segment.  Each
 * accepted prefix with a path that ends in "/" must accept itself followed
 * by "x", so that the check cannot pass by refusing everything.
 */


#include "fuzz_common.h"
#include "ngx_http_scripting_gate_callback.h"
#include <arpa/inet.h>


#define FUZZ_PREFIXES  4


/* a URL as the test reads it */
typedef struct {
    ngx_uint_t  https;
    ngx_uint_t  port;
    u_char      host[NGX_HTTP_SCRIPTING_GATE_MAX_CALLBACK_URL];
    size_t      host_len;
    u_char      path[NGX_HTTP_SCRIPTING_GATE_MAX_CALLBACK_URL];
    size_t      path_len;
    u_char     *raw_path;
    size_t      raw_path_len;
} fuzz_url_t;


static int
fuzz_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* %-decodes; -1 on a malformed escape */

static ssize_t
fuzz_decode(u_char *dst, u_char *src, size_t len)
{
    u_char  *d, *end;
    int      hi, lo;

    d = dst;
    end = src + len;

    while (src < end) {
        if (*src != '%') {
            *d++ = *src++;
            continue;
        }

        if (end - src < 3) {
            return -1;
        }

        hi = fuzz_hex(src[1]);
        lo = fuzz_hex(src[2]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        *d++ = (u_char) (hi * 16 + lo);
        src += 3;
    }

    return d - dst;
}


/* RFC 3986's split of an http(s) URL; 0 if it is not one */

static int
fuzz_split(u_char *p, size_t len, fuzz_url_t *u)
{
    u_char   *end, *auth, *auth_end, *host, *host_end, *colon, *q;
    ssize_t   n;
    ngx_int_t port;

    end = p + len;

    if (len >= 7 && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0) {
        u->https = 0;
        auth = p + 7;

    } else if (len >= 8
               && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0)
    {
        u->https = 1;
        auth = p + 8;

    } else {
        return 0;
    }

    for (auth_end = auth;
         auth_end < end && *auth_end != '/' && *auth_end != '?'
         && *auth_end != '#';
         auth_end++)
    { /* void */ }

    if (ngx_strlchr(auth, auth_end, '@')) {
        return 0;
    }

    host = auth;
    colon = NULL;

    if (host < auth_end && *host == '[') {
        host_end = ngx_strlchr(host, auth_end, ']');
        if (host_end == NULL) {
            return 0;
        }

        host_end++;

        if (host_end < auth_end) {
            if (*host_end != ':') {
                return 0;
            }

            colon = host_end;
        }

    } else {
        for (q = auth_end; q > host; q--) {
            if (q[-1] == ':') {
                colon = q - 1;
                break;
            }
        }

        host_end = colon ? colon : auth_end;
    }

    if (colon == NULL || colon + 1 == auth_end) {
        u->port = u->https ? 443 : 80;

    } else {
        port = ngx_atoi(colon + 1, auth_end - colon - 1);
        if (port == NGX_ERROR) {
            return 0;
        }

        u->port = port;
    }

    n = fuzz_decode(u->host, host, host_end - host);
    if (n <= 0) {
        return 0;
    }

    u->host_len = n;
    ngx_strlow(u->host, u->host, u->host_len);

    for (q = auth_end; q < end && *q != '?' && *q != '#'; q++) { /* void */ }

    u->raw_path = auth_end;
    u->raw_path_len = q - auth_end;

    if (u->raw_path_len == 0) {
        u->path[0] = '/';
        u->path_len = 1;
        return 1;
    }

    n = fuzz_decode(u->path, auth_end, q - auth_end);
    if (n < 0) {
        return 0;
    }

    u->path_len = n;

    return 1;
}


/* the same host, written in any form an address may take */

static int
fuzz_same_host(fuzz_url_t *a, fuzz_url_t *b)
{
    u_char           ha[NGX_HTTP_SCRIPTING_GATE_MAX_CALLBACK_URL + 1];
    u_char           hb[NGX_HTTP_SCRIPTING_GATE_MAX_CALLBACK_URL + 1];
    struct in_addr   a4, b4;
    struct in6_addr  a6, b6;

    if (a->host_len == b->host_len
        && ngx_memcmp(a->host, b->host, a->host_len) == 0)
    {
        return 1;
    }

    if (a->host_len >= 2 && a->host[0] == '[' && a->host[a->host_len - 1] == ']'
        && b->host_len >= 2 && b->host[0] == '['
        && b->host[b->host_len - 1] == ']')
    {
        ngx_memcpy(ha, a->host + 1, a->host_len - 2);
        ha[a->host_len - 2] = '\0';
        ngx_memcpy(hb, b->host + 1, b->host_len - 2);
        hb[b->host_len - 2] = '\0';

        return inet_pton(AF_INET6, (char *) ha, &a6) == 1
               && inet_pton(AF_INET6, (char *) hb, &b6) == 1
               && ngx_memcmp(&a6, &b6, sizeof(struct in6_addr)) == 0;
    }

    ngx_memcpy(ha, a->host, a->host_len);
    ha[a->host_len] = '\0';
    ngx_memcpy(hb, b->host, b->host_len);
    hb[b->host_len] = '\0';

    return inet_aton((char *) ha, &a4) && inet_aton((char *) hb, &b4)
           && a4.s_addr == b4.s_addr;
}


static int
fuzz_under(fuzz_url_t *u, fuzz_url_t *prefix)
{
    if (u->https != prefix->https || u->port != prefix->port
        || !fuzz_same_host(u, prefix))
    {
        return 0;
    }

    if (u->path_len < prefix->path_len
        || ngx_memcmp(u->path, prefix->path, prefix->path_len) != 0)
    {
        return 0;
    }

    return u->path_len == prefix->path_len
           || prefix->path[prefix->path_len - 1] == '/'
           || u->path[prefix->path_len] == '/';
}


static void
fuzz_check_accepted(ngx_str_t *url, fuzz_url_t *prefixes, ngx_uint_t n)
{
    u_char      c, *p, *end, *seg;
    ngx_uint_t  i, found;
    fuzz_url_t  u;

    FUZZ_ASSERT(url->len > 0
                && url->len <= NGX_HTTP_SCRIPTING_GATE_MAX_CALLBACK_URL);

    for (i = 0; i < url->len; i++) {
        c = url->data[i];
        FUZZ_ASSERT(c > ' ' && c < 0x7f && c != '\\' && c != '#');
    }

    FUZZ_ASSERT(fuzz_split(url->data, url->len, &u));

    /* the path as written: nothing a receiver may decode or cut */

    p = u.raw_path;
    end = p + u.raw_path_len;

    for ( /* void */ ; p < end; p++) {
        FUZZ_ASSERT(*p != ';');

        if (*p == '%') {
            FUZZ_ASSERT(end - p >= 3);
            c = (u_char) (fuzz_hex(p[1]) * 16 + fuzz_hex(p[2]));
            FUZZ_ASSERT(c >= 0x20 && c < 0x7f && c != '.' && c != '%'
                        && c != '/' && c != '\\' && c != ';');
        }
    }

    /* no dot segment, so that normalising changes nothing */

    FUZZ_ASSERT(u.path_len > 0 && u.path[0] == '/');

    seg = u.path + 1;
    end = u.path + u.path_len;

    for (p = seg; p <= end; p++) {
        if (p < end && *p != '/') {
            continue;
        }

        FUZZ_ASSERT(!(p - seg == 1 && seg[0] == '.'));
        FUZZ_ASSERT(!(p - seg == 2 && seg[0] == '.' && seg[1] == '.'));
        seg = p + 1;
    }

    found = 0;

    for (i = 0; i < n && !found; i++) {
        found = fuzz_under(&u, &prefixes[i]);
    }

    FUZZ_ASSERT(found);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                                     *buf, *p, *last, *eol;
    char                                       *err;
    ngx_str_t                                   line, url, self;
    ngx_uint_t                                  i, n;
    ngx_pool_t                                 *pool;
    ngx_array_t                                *allow, one;
    fuzz_url_t                                 *prefixes;
    ngx_http_scripting_gate_callback_prefix_t  *prefix;

    pool = ngx_create_pool(4096, &fuzz_log);
    if (pool == NULL) {
        abort();
    }

    /* an exact copy, so that a read past the end is seen */
    buf = ngx_pnalloc(pool, size ? size : 1);
    prefixes = ngx_palloc(pool, FUZZ_PREFIXES * sizeof(fuzz_url_t));
    allow = ngx_array_create(pool, FUZZ_PREFIXES,
                         sizeof(ngx_http_scripting_gate_callback_prefix_t));

    if (buf == NULL || prefixes == NULL || allow == NULL) {
        abort();
    }

    ngx_memcpy(buf, data, size);

    n = 0;
    last = buf + size;

    for (p = buf; ; p = eol + 1) {
        eol = ngx_strlchr(p, last, '\n');

        if (eol == NULL || n == FUZZ_PREFIXES) {
            url.data = p;
            url.len = last - p;
            break;
        }

        line.data = p;
        line.len = eol - p;

        prefix = ngx_array_push(allow);
        if (prefix == NULL) {
            abort();
        }

        err = ngx_http_scripting_gate_callback_prefix(pool, &line, prefix);

        if (err) {
            allow->nelts--;
            continue;
        }

        /* an accepted prefix is a URL the test reads too */
        FUZZ_ASSERT(fuzz_split(line.data, line.len, &prefixes[n]));
        FUZZ_ASSERT(prefix->path.len == prefixes[n].path_len);
        n++;

        if (prefixes[n - 1].path[prefixes[n - 1].path_len - 1] != '/'
            || line.len >= NGX_HTTP_SCRIPTING_GATE_MAX_CALLBACK_URL)
        {
            continue;
        }

        /* not everything is refused: the prefix and "x" is under it */

        self.data = ngx_pnalloc(pool, line.len + 1);
        if (self.data == NULL) {
            abort();
        }

        ngx_memcpy(self.data, line.data, line.len);
        self.data[line.len] = 'x';
        self.len = line.len + 1;

        one.elts = prefix;
        one.nelts = 1;
        one.size = sizeof(ngx_http_scripting_gate_callback_prefix_t);
        one.nalloc = 1;
        one.pool = pool;

        FUZZ_ASSERT(ngx_http_scripting_gate_callback_check(&self, &one)
                    == NULL);
    }

    err = ngx_http_scripting_gate_callback_check(&url,
                                                 n ? allow : NULL);

    if (err == NULL) {
        FUZZ_ASSERT(n > 0);
        fuzz_check_accepted(&url, prefixes, n);
    }

    /* and the same answer again */
    FUZZ_ASSERT((ngx_http_scripting_gate_callback_check(&url,
                                                        n ? allow : NULL)
                 == NULL) == (err == NULL));

    for (i = 0; i < n; i++) {
        FUZZ_ASSERT(prefixes[i].path_len > 0);
    }

    ngx_destroy_pool(pool);

    return 0;
}
