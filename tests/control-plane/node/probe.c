/*
 * kseal-probe: the program of the node's test image (cluster.sh probe-image).
 *
 * It connects to the API server the way a Pod's client would, through the
 * `kubernetes` Service: $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (set by
 * the kubelet), i.e. the ClusterIP, which kube-proxy's iptables rules DNAT to the
 * apiserver's advertised address. It sends a plain-HTTP request to the TLS port:
 * Go's TLS server answers that with "HTTP/1.0 400 Bad Request ... Client sent an
 * HTTP request to an HTTPS server.", which proves a Go HTTPS server (the apiserver)
 * answered, without needing TLS in a static C program.
 *
 *   kseal-probe          check once, print the result, then wait for SIGTERM
 *                        (so `kubectl exec` has a running container)
 *   kseal-probe once     check once and exit: 0 if the apiserver answered
 *
 * Output lines start with "kseal-probe: "; success is "kseal-probe: OK ...".
 * Static, no libc resolver use: the Service host is an IP address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char GO_TLS_ANSWER[] = "Client sent an HTTP request to an HTTPS server";

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

static int check(void) {
  const char *host = getenv("KUBERNETES_SERVICE_HOST");
  const char *port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    printf("kseal-probe: FAIL KUBERNETES_SERVICE_HOST/PORT not set\n");
    return 1;
  }
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(port));
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    printf("kseal-probe: FAIL %s is not an IPv4 address\n", host);
    return 1;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    printf("kseal-probe: FAIL socket: %s\n", strerror(errno));
    return 1;
  }
  struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    printf("kseal-probe: FAIL connect %s:%s: %s\n", host, port, strerror(errno));
    close(fd);
    return 1;
  }
  printf("kseal-probe: connected to %s:%s\n", host, port);
  static const char req[] = "GET /version HTTP/1.0\r\nHost: kubernetes.default.svc\r\n\r\n";
  if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
    printf("kseal-probe: FAIL write: %s\n", strerror(errno));
    close(fd);
    return 1;
  }
  char buf[1024];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    if (got == sizeof buf - 1) break;
  }
  close(fd);
  buf[got] = '\0';
  char *eol = strpbrk(buf, "\r\n");
  char first[128];
  snprintf(first, sizeof first, "%.*s", eol ? (int)(eol - buf) : (int)got, buf);
  if (strstr(buf, GO_TLS_ANSWER)) {
    printf("kseal-probe: OK the apiserver answered through the kubernetes Service (%s:%s): %s\n",
           host, port, first);
    return 0;
  }
  printf("kseal-probe: FAIL unexpected answer (%zu bytes): %s\n", got, first);
  return 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  int rc = check();
  if (argc > 1 && strcmp(argv[1], "once") == 0) return rc;
  for (;;) pause();
}
