/*
 * l2tp-floor: the smallest useful L2TPv3-over-UDP forwarder in C, for the
 * benchmark only (path "floor-c"). It measures what a userspace TAP + UDP
 * socket tunnel costs per frame on this machine when its own code costs almost
 * nothing: every frame still takes one TAP read and one TAP write (the kernel
 * offers no batched TAP I/O without io_uring), UDP goes out and in batches
 * (sendmmsg / recvmmsg of up to BATCH packets), and one thread sleeps in
 * epoll_wait between bursts. No offloads, no sequence numbers, no cookies: the
 * wire format is L2TPv3 over UDP as QEMU's `-netdev l2tpv3,udp=on,counter=on`
 * and ul2tp's defaults send it: the 32-bit flags/version word (version 3, data
 * message), the session ID, the default L2-specific sublayer (4 zero bytes).
 *
 * usage: l2tp-floor TAP LOCAL_IPV4 REMOTE_IPV4 SPORT DPORT TX_SESSION RX_SESSION
 * Creates the TAP, prints "ready" on stdout, forwards until SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define HDR 12 /* flags/version + session ID + default L2-specific sublayer */
#define SLOT 2048

static unsigned char txb[BATCH][SLOT], rxb[BATCH][SLOT];
static volatile sig_atomic_t stop;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s TAP LOCAL REMOTE SPORT DPORT TX_SESSION RX_SESSION\n", argv[0]);
    return 2;
  }
  uint32_t ver = htonl(0x00030000); /* T=0 (data), version 3 */
  uint32_t txs = htonl((uint32_t)strtoul(argv[6], NULL, 0));
  uint32_t rxs = htonl((uint32_t)strtoul(argv[7], NULL, 0));

  int tap = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (tap < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (ioctl(tap, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");

  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (udp < 0) die("socket");
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[4]))};
  struct sockaddr_in ra = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[5]))};
  if (inet_pton(AF_INET, argv[2], &la.sin_addr) != 1 || inet_pton(AF_INET, argv[3], &ra.sin_addr) != 1) {
    fprintf(stderr, "bad IPv4 address\n");
    return 2;
  }
  if (bind(udp, (struct sockaddr *)&la, sizeof la) < 0) die("bind");
  if (connect(udp, (struct sockaddr *)&ra, sizeof ra) < 0) die("connect");

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = tap};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, tap, &ev) < 0) die("epoll_ctl tap");
  ev.data.fd = udp;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, udp, &ev) < 0) die("epoll_ctl udp");

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  static struct mmsghdr tmsg[BATCH], rmsg[BATCH];
  static struct iovec tiov[BATCH], riov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    memcpy(txb[i], &ver, 4);
    memcpy(txb[i] + 4, &txs, 4);
    memset(txb[i] + 8, 0, 4);
    tmsg[i].msg_hdr.msg_iov = &tiov[i];
    tmsg[i].msg_hdr.msg_iovlen = 1;
    tiov[i].iov_base = txb[i];
    riov[i].iov_base = rxb[i];
    riov[i].iov_len = SLOT;
    rmsg[i].msg_hdr.msg_iov = &riov[i];
    rmsg[i].msg_hdr.msg_iovlen = 1;
  }
  printf("ready\n");
  fflush(stdout);

  unsigned long drops = 0;
  struct epoll_event evs[2];
  while (!stop) {
    int ne = epoll_wait(ep, evs, 2, -1);
    if (ne < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int e = 0; e < ne; e++) {
      if (evs[e].data.fd == tap) {
        /* frames → packets: read until the TAP is empty or the batch full, one sendmmsg */
        int n = 0;
        while (n < BATCH) {
          ssize_t r = read(tap, txb[n] + HDR, SLOT - HDR);
          if (r < 0) break;
          tiov[n].iov_len = (size_t)r + HDR;
          n++;
        }
        for (int s = 0; s < n;) {
          int k = sendmmsg(udp, tmsg + s, (unsigned)(n - s), 0);
          if (k <= 0) {
            drops += (unsigned long)(n - s);
            break;
          }
          s += k;
        }
      } else {
        /* packets → frames: one recvmmsg, one TAP write per frame of our session */
        int n = recvmmsg(udp, rmsg, BATCH, 0, NULL);
        for (int i = 0; i < n; i++) {
          unsigned len = rmsg[i].msg_len;
          if (len < HDR + 14 || memcmp(rxb[i], &ver, 4) != 0 || memcmp(rxb[i] + 4, &rxs, 4) != 0) {
            drops++;
            continue;
          }
          if (write(tap, rxb[i] + HDR, len - HDR) < 0) drops++;
        }
      }
    }
  }
  fprintf(stderr, "l2tp-floor: %lu frames dropped\n", drops);
  return 0;
}
