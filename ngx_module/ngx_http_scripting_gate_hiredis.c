
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * hiredis's asynchronous API driven by nginx's event loop: the socket of a
 * redisAsyncContext becomes an nginx connection, whose read and write
 * events call redisAsyncHandleRead() and redisAsyncHandleWrite(); hiredis
 * says through its ev hooks when it wants either.  The connection is
 * hiredis's to close: the cleanup hook gives back the nginx connection,
 * hiredis closes the fd after it.
 */


#include "ngx_http_scripting_gate_util.h"
#include "ngx_http_scripting_gate_hiredis.h"


static void ngx_http_scripting_gate_hiredis_read(ngx_event_t *ev);
static void ngx_http_scripting_gate_hiredis_write(ngx_event_t *ev);
static void ngx_http_scripting_gate_hiredis_add_read(void *data);
static void ngx_http_scripting_gate_hiredis_del_read(void *data);
static void ngx_http_scripting_gate_hiredis_add_write(void *data);
static void ngx_http_scripting_gate_hiredis_del_write(void *data);
static void ngx_http_scripting_gate_hiredis_watch(ngx_connection_t *c,
    ngx_event_t *ev, ngx_uint_t want, ngx_uint_t event);
static void ngx_http_scripting_gate_hiredis_cleanup(void *data);


ngx_int_t
ngx_http_scripting_gate_hiredis_attach(redisAsyncContext *ac, ngx_log_t *log)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = ac;
    c->read->handler = ngx_http_scripting_gate_hiredis_read;
    c->write->handler = ngx_http_scripting_gate_hiredis_write;
    c->read->log = log;
    c->write->log = log;

    ac->ev.data = c;
    ac->ev.addRead = ngx_http_scripting_gate_hiredis_add_read;
    ac->ev.delRead = ngx_http_scripting_gate_hiredis_del_read;
    ac->ev.addWrite = ngx_http_scripting_gate_hiredis_add_write;
    ac->ev.delWrite = ngx_http_scripting_gate_hiredis_del_write;
    ac->ev.cleanup = ngx_http_scripting_gate_hiredis_cleanup;

    return NGX_OK;
}


static void
ngx_http_scripting_gate_hiredis_read(ngx_event_t *ev)
{
    ngx_connection_t  *c;

    c = ev->data;

    /* the context may be gone when this returns: c with it */
    redisAsyncHandleRead(c->data);
}


static void
ngx_http_scripting_gate_hiredis_write(ngx_event_t *ev)
{
    ngx_connection_t  *c;

    c = ev->data;

    redisAsyncHandleWrite(c->data);
}


static void
ngx_http_scripting_gate_hiredis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_scripting_gate_hiredis_watch(c, c->read, 1, NGX_READ_EVENT);
}


static void
ngx_http_scripting_gate_hiredis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_scripting_gate_hiredis_watch(c, c->read, 0, NGX_READ_EVENT);
}


static void
ngx_http_scripting_gate_hiredis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_scripting_gate_hiredis_watch(c, c->write, 1, NGX_WRITE_EVENT);
}


static void
ngx_http_scripting_gate_hiredis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_scripting_gate_hiredis_watch(c, c->write, 0, NGX_WRITE_EVENT);
}


/*
 * A socket that cannot be watched is a connection whose replies do not
 * come: its owner's watchdog drops it as late (the hooks run inside
 * hiredis, which must not be freed under itself).
 */

static void
ngx_http_scripting_gate_hiredis_watch(ngx_connection_t *c, ngx_event_t *ev,
    ngx_uint_t want, ngx_uint_t event)
{
    if (ngx_http_scripting_gate_event_watch(ev, want, event) == NGX_OK) {
        return;
    }

    ngx_log_error(NGX_LOG_ALERT, c->log, ngx_socket_errno,
                  "scripting_gate_redis: the socket of a Redis connection "
                  "could not be watched");
}


static void
ngx_http_scripting_gate_hiredis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    redisAsyncContext  *ac;

    ac = c->data;
    ac->ev.data = NULL;

    ngx_http_scripting_gate_conn_forget(c);
}
