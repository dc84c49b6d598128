
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * libcurl's multi interface driven by nginx's event loop, for the requests
 * that async jobs and their callbacks make.
 *
 * curl tells which sockets it wants watched (the socket callback) and when
 * it wants to be called back (the timer callback); each socket becomes an
 * nginx connection whose read and write events call
 * curl_multi_socket_action(), and the timer is an nginx timer.  Events are
 * added level-triggered: curl may stop reading before a socket is drained,
 * and an edge-triggered event would then never fire again.  Nothing here
 * blocks: curl resolves names in its threaded resolver or from the cache,
 * and the one multi handle of a worker serves all its transfers.
 */


#include "ngx_http_scripting_gate_async.h"
#include "ngx_http_scripting_gate_curl.h"


static int ngx_http_scripting_gate_curl_socket(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static int ngx_http_scripting_gate_curl_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_scripting_gate_curl_event(ngx_event_t *ev);
static void ngx_http_scripting_gate_curl_timeout(ngx_event_t *ev);
static void ngx_http_scripting_gate_curl_action(curl_socket_t s, int mask);
static int ngx_http_scripting_gate_curl_fail(CURL *easy);
static void ngx_http_scripting_gate_curl_fail_handler(ngx_event_t *ev);


static CURLM        *ngx_http_scripting_gate_multi;
static ngx_event_t   ngx_http_scripting_gate_curl_timer_event;
/* stands for a connection in the timer's debug lines, with fd -1 */
static ngx_connection_t  ngx_http_scripting_gate_curl_timer_conn;
static ngx_uint_t    ngx_http_scripting_gate_curl_global;


/* the worker's multi handle, made when the first transfer needs it */

static ngx_int_t
ngx_http_scripting_gate_curl_init(ngx_log_t *log)
{
    CURLM  *multi;

    if (ngx_http_scripting_gate_multi) {
        return NGX_OK;
    }

    if (!ngx_http_scripting_gate_curl_global) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            ngx_log_error(NGX_LOG_ALERT, log, 0, "curl_global_init() failed");
            return NGX_ERROR;
        }

        ngx_http_scripting_gate_curl_global = 1;
    }

    multi = curl_multi_init();
    if (multi == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0, "curl_multi_init() failed");
        return NGX_ERROR;
    }

    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_scripting_gate_curl_socket);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_scripting_gate_curl_timer);

    ngx_http_scripting_gate_curl_timer_event.handler =
                                          ngx_http_scripting_gate_curl_timeout;
    ngx_http_scripting_gate_curl_timer_conn.fd = (ngx_socket_t) -1;
    ngx_http_scripting_gate_curl_timer_event.data =
                                     &ngx_http_scripting_gate_curl_timer_conn;
    ngx_http_scripting_gate_curl_timer_event.log = ngx_cycle->log;

    /* the jobs' own timers keep a worker that shuts down alive, not this */
    ngx_http_scripting_gate_curl_timer_event.cancelable = 1;

    ngx_http_scripting_gate_multi = multi;

    return NGX_OK;
}


/* starts a transfer; its CURLOPT_PRIVATE is a ngx_..._curl_t */

ngx_int_t
ngx_http_scripting_gate_curl_add(ngx_http_scripting_gate_curl_t *cu,
    ngx_log_t *log)
{
    CURLMcode  rc;

    if (ngx_http_scripting_gate_curl_init(log) != NGX_OK) {
        return NGX_ERROR;
    }

    curl_easy_setopt(cu->easy, CURLOPT_PRIVATE, cu);

    rc = curl_multi_add_handle(ngx_http_scripting_gate_multi, cu->easy);

    if (rc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "curl_multi_add_handle() failed: %s",
                      curl_multi_strerror(rc));
        return NGX_ERROR;
    }

    cu->active = 1;

    return NGX_OK;
}


/* stops a transfer, done or not; idempotent */

void
ngx_http_scripting_gate_curl_remove(ngx_http_scripting_gate_curl_t *cu)
{
    if (cu->fail.posted) {
        ngx_delete_posted_event(&cu->fail);
    }

    if (!cu->active) {
        return;
    }

    cu->active = 0;

    (void) curl_multi_remove_handle(ngx_http_scripting_gate_multi, cu->easy);
}


static int
ngx_http_scripting_gate_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_connection_t  *c = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (c) {
            ngx_http_scripting_gate_conn_forget(c);
            curl_multi_assign(ngx_http_scripting_gate_multi, s, NULL);
        }

        return 0;
    }

    if (c == NULL) {
        c = ngx_get_connection(s, ngx_cycle->log);
        if (c == NULL) {
            return ngx_http_scripting_gate_curl_fail(easy);
        }

        c->log = ngx_cycle->log;
        c->read->handler = ngx_http_scripting_gate_curl_event;
        c->write->handler = ngx_http_scripting_gate_curl_event;
        c->read->log = c->log;
        c->write->log = c->log;

        curl_multi_assign(ngx_http_scripting_gate_multi, s, c);
    }

    if (ngx_http_scripting_gate_event_watch(c->read,
                                           what & CURL_POLL_IN,
                                           NGX_READ_EVENT)
        != NGX_OK
        || ngx_http_scripting_gate_event_watch(c->write,
                                              what & CURL_POLL_OUT,
                                              NGX_WRITE_EVENT)
           != NGX_OK)
    {
        return ngx_http_scripting_gate_curl_fail(easy);
    }

    return 0;
}


/*
 * A socket that cannot be watched fails its transfer only: -1 would make
 * curl give up every transfer of the multi handle.  The transfer is ended
 * from a posted event, outside curl.
 */

static int
ngx_http_scripting_gate_curl_fail(CURL *easy)
{
    ngx_http_scripting_gate_curl_t  *cu;

    cu = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &cu);

    if (cu && !cu->fail.posted) {
        cu->fail.handler = ngx_http_scripting_gate_curl_fail_handler;
        cu->fail.data = cu;
        cu->fail.log = ngx_cycle->log;
        ngx_post_event(&cu->fail, &ngx_posted_events);
    }

    return 0;
}


static void
ngx_http_scripting_gate_curl_fail_handler(ngx_event_t *ev)
{
    ngx_http_scripting_gate_curl_t  *cu;

    cu = ev->data;

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  "scripting_async: a socket of a transfer could not be "
                  "watched, the attempt fails");

    ngx_http_scripting_gate_curl_remove(cu);

    cu->done(cu, CURLE_COULDNT_CONNECT);
}




static int
ngx_http_scripting_gate_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_event_t  *ev;

    ev = &ngx_http_scripting_gate_curl_timer_event;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (timeout_ms < 0) {
        return 0;
    }

    /* never call curl back from inside curl: 0 ms is a timer too */
    ngx_add_timer(ev, (ngx_msec_t) timeout_ms);

    return 0;
}


static void
ngx_http_scripting_gate_curl_event(ngx_event_t *ev)
{
    ngx_connection_t  *c;

    c = ev->data;

    ngx_http_scripting_gate_curl_action(c->fd, ev->write ? CURL_CSELECT_OUT
                                                         : CURL_CSELECT_IN);
}


static void
ngx_http_scripting_gate_curl_timeout(ngx_event_t *ev)
{
    ngx_http_scripting_gate_curl_action(CURL_SOCKET_TIMEOUT, 0);
}


/* lets curl work, then hands each finished transfer to its owner */

static void
ngx_http_scripting_gate_curl_action(curl_socket_t s, int mask)
{
    int                              running, left;
    CURLMsg                         *msg;
    CURLcode                         result;
    ngx_http_scripting_gate_curl_t  *cu;

    (void) curl_multi_socket_action(ngx_http_scripting_gate_multi, s, mask,
                                    &running);

    for ( ;; ) {
        msg = curl_multi_info_read(ngx_http_scripting_gate_multi, &left);
        if (msg == NULL) {
            break;
        }

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        cu = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &cu);

        if (cu == NULL) {
            continue;
        }

        result = msg->data.result;

        ngx_http_scripting_gate_curl_remove(cu);

        cu->done(cu, result);
    }
}


void
ngx_http_scripting_gate_curl_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_scripting_gate_curl_timer_event.timer_set) {
        ngx_del_timer(&ngx_http_scripting_gate_curl_timer_event);
    }

    if (ngx_http_scripting_gate_multi) {
        (void) curl_multi_cleanup(ngx_http_scripting_gate_multi);
        ngx_http_scripting_gate_multi = NULL;
    }

    if (ngx_http_scripting_gate_curl_global) {
        curl_global_cleanup();
        ngx_http_scripting_gate_curl_global = 0;
    }
}
