/* ceiling_server.c - the "limit" column of tests/bench: a socketmap server on a unix
 * socket that answers "OK 1" to every request without looking at it. One thread per
 * connection, blocking reads; it only counts complete netstrings. Built by
 * lookup_bench.py with `cc -O2 -pthread`; stops on SIGTERM. Not part of postern. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void *serve(void *arg) {
  int fd = (int)(long)arg;
  static const char reply[] = "4:OK 1,";
  char buf[65536];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof buf - have);
    if (n <= 0) break;
    have += (size_t)n;
    size_t pos = 0;
    for (;;) { /* consume every complete "<len>:<bytes>," */
      char *colon = memchr(buf + pos, ':', have - pos);
      if (!colon) break;
      size_t len = strtoul(buf + pos, NULL, 10);
      size_t end = (size_t)(colon - buf) + 1 + len + 1;
      if (end > have) break;
      pos = end;
      if (write(fd, reply, sizeof reply - 1) < 0) goto out;
    }
    memmove(buf, buf + pos, have - pos);
    have -= pos;
    if (have == sizeof buf) break; /* request larger than the buffer: give up */
  }
out:
  close(fd);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
  int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 64) < 0) return 1;
  chmod(argv[1], 0666);
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) continue;
    pthread_t t;
    if (pthread_create(&t, NULL, serve, (void *)(long)fd) == 0) pthread_detach(t);
    else close(fd);
  }
}
