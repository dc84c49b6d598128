
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Callback URLs: a job's JSON goes only under a prefix that the
 * configuration allows, so that the gateway cannot be made to reach other
 * hosts, or other paths of an allowed host.
 *
 * The URL is parsed by libcurl's URL API, the parser that then sends the
 * callback, so that what is checked is what is reached: scheme, host and
 * port are compared exactly with the prefix's.  The path goes out as it is
 * written (CURLOPT_PATH_AS_IS) and the receiver may normalise it, so what
 * a receiver could read as another path is refused: dot segments, ";"
 * (path parameters: "/hook/..;/admin"), escaped ".", "%", "/", "\" and
 * ";" (decoded once or twice into them), and bytes that are not printable
 * ASCII, escaped or not (overlong UTF-8 forms of "." and "/").  What is
 * left has one reading only, once %-decoded, and it is compared with the
 * prefix's path segment by segment.
 *
 * The functions need no request, so that a fuzz target can run them.
 */


#include "ngx_http_scripting_gate_callback.h"
#include <curl/curl.h>


#define NGX_HTTP_SCRIPTING_GATE_MAX_HOST  255


/* a URL as the check reads it */
typedef struct {
    ngx_uint_t                            https;
    ngx_uint_t                            port;
    size_t                                host_len;
    size_t                                path_len;
    u_char                   host[NGX_HTTP_SCRIPTING_GATE_MAX_HOST];
    u_char                   path[NGX_HTTP_SCRIPTING_GATE_MAX_CALLBACK_URL];
} ngx_http_scripting_gate_callback_url_t;


static char *ngx_http_scripting_gate_callback_parse(ngx_str_t *text,
    ngx_http_scripting_gate_callback_url_t *u);
static char *ngx_http_scripting_gate_callback_path(u_char *p,
    ngx_http_scripting_gate_callback_url_t *u);
static ngx_int_t ngx_http_scripting_gate_callback_hex(u_char c);
static ngx_uint_t ngx_http_scripting_gate_callback_under(
    ngx_http_scripting_gate_callback_url_t *u,
    ngx_http_scripting_gate_callback_prefix_t *prefix);


/* a callback_allow prefix: NULL, or why it is invalid */

char *
ngx_http_scripting_gate_callback_prefix(ngx_pool_t *pool, ngx_str_t *text,
    ngx_http_scripting_gate_callback_prefix_t *prefix)
{
    char                                    *err;
    ngx_http_scripting_gate_callback_url_t   u;

    err = ngx_http_scripting_gate_callback_parse(text, &u);
    if (err) {
        return err;
    }

    if (ngx_strlchr(text->data, text->data + text->len, '?') != NULL) {
        return "a prefix has no query";
    }

    prefix->https = u.https;
    prefix->port = u.port;

    prefix->host.data = ngx_pnalloc(pool, u.host_len);
    prefix->path.data = ngx_pnalloc(pool, u.path_len);

    if (prefix->host.data == NULL || prefix->path.data == NULL) {
        return "no memory";
    }

    prefix->host.len = u.host_len;
    ngx_memcpy(prefix->host.data, u.host, u.host_len);

    prefix->path.len = u.path_len;
    ngx_memcpy(prefix->path.data, u.path, u.path_len);

    return NULL;
}


/*
 * NULL when the URL is under one of the prefixes of "allow" (an array of
 * ngx_http_scripting_gate_callback_prefix_t, or NULL), else why not
 */

char *
ngx_http_scripting_gate_callback_check(ngx_str_t *url, ngx_array_t *allow)
{
    char                                       *err;
    ngx_uint_t                                  i;
    ngx_http_scripting_gate_callback_url_t      u;
    ngx_http_scripting_gate_callback_prefix_t  *prefix;

    err = ngx_http_scripting_gate_callback_parse(url, &u);
    if (err) {
        return err;
    }

    if (allow) {
        prefix = allow->elts;

        for (i = 0; i < allow->nelts; i++) {
            if (ngx_http_scripting_gate_callback_under(&u, &prefix[i])) {
                return NULL;
            }
        }
    }

    return "it is under no callback_allow prefix";
}


static char *
ngx_http_scripting_gate_callback_parse(ngx_str_t *text,
    ngx_http_scripting_gate_callback_url_t *u)
{
    char        *err, *part;
    u_char      *p, *last, c;
    u_char       buf[NGX_HTTP_SCRIPTING_GATE_MAX_CALLBACK_URL + 1];
    size_t       len;
    CURLU       *cu;
    ngx_int_t    port;
    ngx_uint_t   i;

    /* nothing a URL may hold that no prefix can say */
    static CURLUPart  absent[] = {
        CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS,
        CURLUPART_ZONEID
    };

    if (text->len == 0 || text->len > NGX_HTTP_SCRIPTING_GATE_MAX_CALLBACK_URL)
    {
        return "it is empty or longer than 2048 bytes";
    }

    for (i = 0; i < text->len; i++) {
        c = text->data[i];

        if (c <= ' ' || c >= 0x7f || c == '\\' || c == '#') {
            return "it holds a space, a control byte, a backslash, \"#\" or "
                   "a byte that is not ASCII";
        }
    }

    /* libcurl also takes "http:/host" and "http:///host"; nobody else does */

    if (text->len > 7
        && ngx_strncasecmp(text->data, (u_char *) "http://", 7) == 0)
    {
        u->https = 0;
        p = text->data + 7;

    } else if (text->len > 8
               && ngx_strncasecmp(text->data, (u_char *) "https://", 8) == 0)
    {
        u->https = 1;
        p = text->data + 8;

    } else {
        p = NULL;
    }

    if (p == NULL || *p == '/') {
        return "it is not an http:// or https:// URL with a host";
    }

    /* a path written, as a prefix has, not the "/" that libcurl adds */

    last = text->data + text->len;

    for ( /* void */ ; p < last && *p != '/' && *p != '?'; p++) { /* void */ }

    if (p == last || *p == '?') {
        return "it must be an http:// or https:// URL with a path, such as "
               "\"https://host/\"";
    }

    ngx_memcpy(buf, text->data, text->len);
    buf[text->len] = '\0';

    cu = curl_url();
    if (cu == NULL) {
        return "no memory";
    }

    err = NULL;
    part = NULL;

    if (curl_url_set(cu, CURLUPART_URL, (char *) buf, CURLU_PATH_AS_IS)
        != CURLUE_OK)
    {
        err = "libcurl cannot parse it";
        goto done;
    }

    for (i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        if (curl_url_get(cu, absent[i], &part, 0) == CURLUE_OK) {
            err = "it has a user, a password or a zone id";
            goto done;
        }
    }

    if (curl_url_get(cu, CURLUPART_HOST, &part, 0) != CURLUE_OK) {
        err = "it has no host";
        goto done;
    }

    len = ngx_strlen(part);

    if (len == 0 || len > NGX_HTTP_SCRIPTING_GATE_MAX_HOST) {
        err = "its host is empty or longer than 255 bytes";
        goto done;
    }

    u->host_len = len;
    ngx_strlow(u->host, (u_char *) part, len);

    /* a name or an address, as libcurl has decoded it: no "%" left over */

    for (i = 0; i < len; i++) {
        c = u->host[i];

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
            || c == '.' || c == '_'
            || (u->host[0] == '[' && (c == ':' || c == '[' || c == ']')))
        {
            continue;
        }

        err = "its host is not a name nor an address";
        goto done;
    }

    curl_free(part);
    part = NULL;

    if (curl_url_get(cu, CURLUPART_PORT, &part, CURLU_DEFAULT_PORT)
        != CURLUE_OK)
    {
        err = "it has no port";
        goto done;
    }

    port = ngx_atoi((u_char *) part, ngx_strlen(part));

    if (port < 1 || port > 65535) {
        err = "its port is invalid";
        goto done;
    }

    u->port = port;

    curl_free(part);
    part = NULL;

    if (curl_url_get(cu, CURLUPART_PATH, &part, 0) != CURLUE_OK) {
        err = "it has no path";
        goto done;
    }

    err = ngx_http_scripting_gate_callback_path((u_char *) part, u);

done:

    curl_free(part);
    curl_url_cleanup(cu);

    return err;
}


/* the path as written, %-decoded into u->path; NULL, or why it is refused */

static char *
ngx_http_scripting_gate_callback_path(u_char *p,
    ngx_http_scripting_gate_callback_url_t *u)
{
    u_char     c, *d, *end, *seg;
    ngx_int_t  hi, lo;

    if (*p != '/') {
        return "its path does not start with \"/\"";
    }

    d = u->path;
    end = u->path + sizeof(u->path);

    for ( /* void */ ; *p; p++) {
        c = *p;

        if (c <= ' ' || c >= 0x7f || c == '\\' || c == ';') {
            return "its path holds \";\", a backslash or a byte that is not "
                   "printable ASCII";
        }

        if (c == '%') {
            hi = ngx_http_scripting_gate_callback_hex(p[1]);
            lo = (hi == -1) ? -1 : ngx_http_scripting_gate_callback_hex(p[2]);

            if (lo == -1) {
                return "its path holds a malformed %-escape";
            }

            c = (u_char) (hi * 16 + lo);

            if (c < ' ' || c >= 0x7f || c == '.' || c == '%' || c == '/'
                || c == '\\' || c == ';')
            {
                return "its path holds an escaped \".\", \"%\", \"/\", "
                       "backslash, \";\" or a byte that is not printable "
                       "ASCII";
            }

            p += 2;
        }

        if (d == end) {
            return "its path is too long";
        }

        *d++ = c;
    }

    u->path_len = d - u->path;

    /* only plain dots can spell a dot segment now */

    seg = u->path + 1;

    for (p = seg; p <= d; p++) {
        if (p < d && *p != '/') {
            continue;
        }

        if ((p - seg == 1 && seg[0] == '.')
            || (p - seg == 2 && seg[0] == '.' && seg[1] == '.'))
        {
            return "its path has a dot segment";
        }

        seg = p + 1;
    }

    return NULL;
}


static ngx_int_t
ngx_http_scripting_gate_callback_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* the same origin, and the prefix's path, then a segment boundary */

static ngx_uint_t
ngx_http_scripting_gate_callback_under(
    ngx_http_scripting_gate_callback_url_t *u,
    ngx_http_scripting_gate_callback_prefix_t *prefix)
{
    if (u->https != prefix->https
        || u->port != prefix->port
        || u->host_len != prefix->host.len
        || ngx_memcmp(u->host, prefix->host.data, u->host_len) != 0)
    {
        return 0;
    }

    if (u->path_len < prefix->path.len
        || ngx_memcmp(u->path, prefix->path.data, prefix->path.len) != 0)
    {
        return 0;
    }

    return u->path_len == prefix->path.len
           || prefix->path.data[prefix->path.len - 1] == '/'
           || u->path[prefix->path.len] == '/';
}
