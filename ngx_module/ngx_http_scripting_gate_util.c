
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Helpers that several modules of the .so share: the "zone=" parameter,
 * headers, an answer held in memory, the request's correlation id,
 * Retry-After values, and text made safe for JSON and Prometheus, and for
 * the error log.
 */


#include "ngx_http_scripting_gate_util.h"


static size_t ngx_http_scripting_gate_utf8_len(u_char *p, u_char *end);


/* "zone=NAME:SIZE" of scripting_gate_zone and scripting_async_zone */

char *
ngx_http_scripting_gate_conf_zone(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name, ssize_t *size)
{
    u_char     *p;
    ngx_str_t   s;

    name->data = value->data + 5;

    p = (u_char *) ngx_strlchr(name->data, value->data + value->len, ':');

    if (p == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", value);
        return NGX_CONF_ERROR;
    }

    name->len = p - name->data;

    s.data = p + 1;
    s.len = value->data + value->len - s.data;

    *size = ngx_parse_size(&s);

    if (*size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", value);
        return NGX_CONF_ERROR;
    }

    if (*size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", value);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The contextId and ININ-Correlation-Id of the errors a request gets: its
 * $request_id in the shape of Genesys' correlation ids, a UUID (8-4-4-4-12
 * hex digits), so that the access log's $request_id is the same id without
 * its dashes.
 */

ngx_int_t
ngx_http_scripting_gate_request_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char                     *p;
    ngx_http_variable_value_t  *vv;

    static ngx_str_t   name = ngx_string("request_id");
    static ngx_uint_t  hash;

    if (hash == 0) {
        hash = ngx_hash_key(name.data, name.len);
    }

    /* looked up by name: only answers of the gateway's own need it */
    vv = ngx_http_get_variable(r, &name, hash);
    if (vv == NULL || vv->not_found) {
        return NGX_ERROR;
    }

    if (vv->len != 32) {
        id->len = vv->len;
        id->data = vv->data;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 36);
    if (p == NULL) {
        return NGX_ERROR;
    }

    id->data = p;

    p = ngx_cpymem(p, vv->data, 8);
    *p++ = '-';
    p = ngx_cpymem(p, vv->data + 8, 4);
    *p++ = '-';
    p = ngx_cpymem(p, vv->data + 12, 4);
    *p++ = '-';
    p = ngx_cpymem(p, vv->data + 16, 4);
    *p++ = '-';
    p = ngx_cpymem(p, vv->data + 20, 12);

    id->len = p - id->data;

    return NGX_OK;
}


/* an answer held whole in memory, JSON unless the caller set a type */

ngx_int_t
ngx_http_scripting_gate_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;

    if (r->headers_out.content_type.len == 0) {
        ngx_str_set(&r->headers_out.content_type, "application/json");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    if (body->len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_scripting_gate_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.len = ngx_strlen(name);
    h->key.data = (u_char *) name;
    h->value = *value;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/*
 * The first request header of that name; nginx keeps some (Accept) in
 * headers_in only when built with certain modules, so the list is read.
 */

ngx_table_elt_t *
ngx_http_scripting_gate_header_in(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i];
        }
    }
}


/* a Retry-After value: delay-seconds or an HTTP-date, in ms from now */

ngx_int_t
ngx_http_scripting_gate_retry_after_value(ngx_str_t *value, ngx_msec_t *ms)
{
    time_t     t, now;
    ngx_int_t  n;

    /* 10 digits: more than a century, and no overflow of time_t */

    if (value->len <= 10) {
        n = ngx_atoi(value->data, value->len);

        if (n != NGX_ERROR) {
            *ms = (ngx_msec_t) ngx_min(n, NGX_MAX_INT32_VALUE / 1000) * 1000;
            return NGX_OK;
        }
    }

    t = ngx_parse_http_time(value->data, value->len);

    if (t == NGX_ERROR) {
        return NGX_ERROR;
    }

    now = ngx_time();

    if (t <= now) {
        *ms = 0;
        return NGX_OK;
    }

    *ms = (ngx_msec_t) ngx_min(t - now, NGX_MAX_INT32_VALUE / 1000) * 1000;

    return NGX_OK;
}


/*
 * JSON and the Prometheus text are UTF-8, while a key holds whatever bytes
 * the request had: a byte that is not part of a valid sequence is shown as
 * \xHH instead, so that one odd key cannot break the whole answer (nor a
 * job's JSON).  In a key, a backslash is shown as \x5C too: otherwise the
 * key made of byte 0xFF and the key made of the four characters "\xFF"
 * would be shown alike, one hiding the other in JSON and both making one
 * series twice in Prometheus.
 */

ngx_int_t
ngx_http_scripting_gate_utf8(ngx_pool_t *pool, ngx_str_t *s,
    ngx_uint_t key)
{
    size_t   n;
    u_char  *p, *d, *end, *dst;

    end = s->data + s->len;

    for (p = s->data; p < end; p += n) {
        n = ngx_http_scripting_gate_utf8_len(p, end);
        if (n == 0 || (key && *p == '\\')) {
            break;
        }
    }

    if (p == end) {
        return NGX_OK;
    }

    dst = ngx_pnalloc(pool, s->len * 4);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    d = ngx_cpymem(dst, s->data, p - s->data);

    while (p < end) {
        n = ngx_http_scripting_gate_utf8_len(p, end);

        if (n == 0 || (key && *p == '\\')) {
            d = ngx_sprintf(d, "\\x%02Xd", *p++);
            continue;
        }

        d = ngx_cpymem(d, p, n);
        p += n;
    }

    s->data = dst;
    s->len = d - dst;

    return NGX_OK;
}


/*
 * Values from outside (keys, URIs, header values) in the module's error-log
 * lines: a CR or LF in a key must not start a line of its own that looks
 * like nginx wrote it, nor other control bytes reach a terminal.  Control
 * bytes, DEL, bytes of 0x80 and more and '"' are written \xNN (as nginx's
 * access log writes them), so that the line is one line and the quotes
 * around the value are the module's; '\' is left as it is, as jansson's
 * messages have it ("\u0000 is not allowed").  A value whose escaped form
 * does not fit is cut, and ends with "...".
 */

ngx_str_t *
ngx_http_scripting_gate_log_value(ngx_http_scripting_gate_log_value_t *lv,
    u_char *data, size_t len)
{
    u_char      c, *p, *end, *last;
    size_t      n;
    ngx_uint_t  i;

    static u_char  hex[] = "0123456789ABCDEF";

    n = 0;

    for (i = 0; i < len; i++) {
        c = data[i];
        n += (c < 0x20 || c >= 0x7f || c == '"') ? 4 : 1;
    }

    p = lv->data;
    end = lv->data + NGX_HTTP_SCRIPTING_GATE_LOG_VALUE;
    last = (n <= NGX_HTTP_SCRIPTING_GATE_LOG_VALUE) ? end : end - 3;

    for (i = 0; i < len; i++) {
        c = data[i];

        if (c < 0x20 || c >= 0x7f || c == '"') {
            if (last - p < 4) {
                break;
            }

            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
            continue;
        }

        if (p == last) {
            break;
        }

        *p++ = c;
    }

    if (i < len) {
        p = ngx_cpymem(p, "...", 3);
    }

    lv->str.data = lv->data;
    lv->str.len = p - lv->data;

    return &lv->str;
}


/*
 * the length of the valid UTF-8 sequence at p, or 0 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF; jansson is as strict)
 */

static size_t
ngx_http_scripting_gate_utf8_len(u_char *p, u_char *end)
{
    size_t    len, i;
    uint32_t  u, min;

    u = *p;

    if (u < 0x80) {
        return 1;
    }

    if (u >= 0xc2 && u <= 0xdf) {
        len = 2;
        u &= 0x1f;
        min = 0x80;

    } else if (u >= 0xe0 && u <= 0xef) {
        len = 3;
        u &= 0x0f;
        min = 0x800;

    } else if (u >= 0xf0 && u <= 0xf4) {
        len = 4;
        u &= 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if ((size_t) (end - p) < len) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        u = (u << 6) | (p[i] & 0x3f);
    }

    if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
        return 0;
    }

    return len;
}


/*
 * A foreign library's socket watched by nginx (curl.c, hiredis.c): events
 * are added level-triggered, as the library may stop reading before the
 * socket is drained, and an edge-triggered event would then never fire
 * again.
 */

ngx_int_t
ngx_http_scripting_gate_event_watch(ngx_event_t *ev, ngx_uint_t want,
    ngx_uint_t event)
{
    if (want && !ev->active) {
        return ngx_add_event(ev, event, 0);
    }

    if (!want && ev->active) {
        return ngx_del_event(ev, event, 0);
    }

    return NGX_OK;
}


/* the library no longer watches the socket: the connection goes, not fd */

void
ngx_http_scripting_gate_conn_forget(ngx_connection_t *c)
{
    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);

    /* the fd is the library's to close; nginx must not count it open */
    c->fd = (ngx_socket_t) -1;
}
