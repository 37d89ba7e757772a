/*
 * sink.c — the transport floor for the server benchmark: an HTTP/1.1 server
 * that does nothing but move bytes.  It reads each request's headers and its
 * Content-Length body into one buffer, then answers 200 with a body of
 * RESPONSE_BYTES zero bytes, on keep-alive connections, one thread per
 * connection.  wrk against it, with the same request attnd gets, measures
 * what loopback TCP and wrk themselves cost; attnd's end-to-end time minus
 * its forward minus this is the server's own overhead.  Not a server: no
 * chunked bodies, no pipelining, no limits beyond --max-body.
 *
 *   sink RESPONSE_BYTES [MAX_BODY]
 *
 * Listens on 127.0.0.1, an ephemeral port, printed as
 * "listening on 127.0.0.1:PORT"; GET /ready answers 200 with no body.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static size_t resp_bytes, max_body;
static char *resp_body;

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) goto out;
    for (;;) {
        /* headers */
        char *end = NULL;
        while (!(end = len ? strstr(buf, "\r\n\r\n") : NULL)) {
            if (len == cap) goto out; /* headers over 64 KiB */
            ssize_t r = recv(fd, buf + len, cap - len, 0);
            if (r <= 0) goto out;
            len += (size_t)r;
            buf[len] = '\0';
        }
        size_t head = (size_t)(end + 4 - buf), body = 0;
        for (char *l = strstr(buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n"))
            if (!strncasecmp(l + 2, "Content-Length:", 15)) body = strtoull(l + 17, NULL, 10);
        if (body > max_body) goto out;
        int is_get = !strncmp(buf, "GET ", 4);
        size_t need = head + body;
        if (need > cap) {
            char *p = realloc(buf, need + 1);
            if (!p) goto out;
            buf = p;
            cap = need;
        }
        while (len < need) {
            ssize_t r = recv(fd, buf + len, need - len, 0);
            if (r <= 0) goto out;
            len += (size_t)r;
        }
        size_t n = is_get ? 0 : resp_bytes;
        char hdr[160];
        int hn = snprintf(hdr, sizeof hdr,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n", n);
        if (send_all(fd, hdr, (size_t)hn) || send_all(fd, resp_body, n)) goto out;
        /* keep what followed this request (none without pipelining) */
        memmove(buf, buf + need, len - need);
        len -= need;
        buf[len] = '\0';
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: sink RESPONSE_BYTES [MAX_BODY]\n");
        return 2;
    }
    resp_bytes = strtoull(argv[1], NULL, 10);
    max_body = argc > 2 ? strtoull(argv[2], NULL, 10) : (size_t)1 << 30;
    resp_body = calloc(resp_bytes + 1, 1);
    if (!resp_body) return 1;
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 128) ||
        getsockname(ls, (struct sockaddr *)&a, &al)) {
        perror("sink");
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}
