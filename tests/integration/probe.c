/* A static test program run inside containers to see what the kernel lets the process do.
 *
 *   probe self               its own Cap*, NoNewPrivs, Uid, Gid, Groups lines from
 *                            /proc/self/status, "Max open files" from /proc/self/limits,
 *                            then "securebits=S keepcaps=K" (prctl)
 *   probe call NR [ARG...]   syscall(NR, ARG...); prints "ret=R errno=E"
 *   probe i386 NR            the same syscall number through int 0x80 (the x86 32-bit ABI)
 *   probe thread NR          a second thread makes the syscall; the first prints "main alive"
 *   probe trap NR            prints what a SIGSYS handler learns ("sigsys code=C nr=N errno=E")
 *   probe trace NR           a ptrace tracer child sees PTRACE_EVENT_SECCOMP ("event msg=M")
 *   probe signal NR          SIGUSR1 handler (no SA_RESTART) prints "usr1"; then like call
 *   probe exchange A B FILE  swap the names A and B atomically (renameat2 RENAME_EXCHANGE)
 *                            forever, writing the count to FILE every 1000 swaps
 *
 * Built by the tests with `gcc -static` (tests/integration/probe.py); busybox alone cannot
 * make arbitrary syscalls, and reading /proc/self/status through grep shows grep's own state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long nr;
static long args[6];

static long call(void)
{
    return syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
}

static void report(long ret)
{
    printf("ret=%ld errno=%d\n", ret, ret < 0 ? errno : 0);
}

static void on_sigsys(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)ctx;
    printf("sigsys code=%d nr=%d errno=%d\n", info->si_code, info->si_syscall, info->si_errno);
    fflush(stdout);
    _exit(0);
}

static void on_usr1(int sig)
{
    (void)sig;
    write(1, "usr1\n", 5);
}

static void *thread_main(void *unused)
{
    (void)unused;
    report(call());
    return NULL;
}

static int trace(void)
{
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        report(call());
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    ptrace(PTRACE_SETOPTIONS, child, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT, child, 0, 0);
    while (waitpid(child, &status, 0) == child && !WIFEXITED(status) && !WIFSIGNALED(status)) {
        if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_SECCOMP << 8))) {
            unsigned long msg = 0;
            ptrace(PTRACE_GETEVENTMSG, child, 0, &msg);
            printf("event msg=%lu\n", msg);
            fflush(stdout);
        }
        ptrace(PTRACE_CONT, child, 0, 0);
    }
    return 0;
}

static int self(void)
{
    static const char *keys[] = {"Cap", "NoNewPrivs:", "Uid:", "Gid:", "Groups:", NULL};
    char line[512];
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 1;
    while (fgets(line, sizeof line, f))
        for (int i = 0; keys[i]; i++)
            if (!strncmp(line, keys[i], strlen(keys[i])))
                fputs(line, stdout);
    fclose(f);
    f = fopen("/proc/self/limits", "r");
    if (!f)
        return 1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Max open files", 14))
            fputs(line, stdout);
    fclose(f);
    printf("securebits=%d keepcaps=%d\n", prctl(PR_GET_SECUREBITS), prctl(PR_GET_KEEPCAPS));
    return 0;
}

static int exchange(const char *a, const char *b, const char *file)
{
    char tmp[4096], text[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    for (unsigned long n = 1;; n++) {
        if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0) {
            perror("renameat2");
            return 1;
        }
        if (n % 1000 == 0) {
            FILE *f = fopen(tmp, "w");
            if (!f)
                return 1;
            snprintf(text, sizeof text, "%lu\n", n);
            fputs(text, f);
            fclose(f);
            rename(tmp, file);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "exchange"))
        return exchange(argv[2], argv[3], argv[4]);
    if (argc == 2 && !strcmp(argv[1], "self"))
        return self();
    if (argc < 3) {
        fprintf(stderr, "usage: probe self | probe exchange A B FILE |\n"
                        "       probe call|i386|thread|trap|trace|signal NR [ARG...]\n");
        return 2;
    }
    nr = strtol(argv[2], NULL, 0);
    for (int i = 3; i < argc && i < 9; i++)
        args[i - 3] = (long)strtoull(argv[i], NULL, 0);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(argv[1], "call")) {
        report(call());
    } else if (!strcmp(argv[1], "i386")) {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory");
        printf("ret=%ld\n", ret);
    } else if (!strcmp(argv[1], "thread")) {
        pthread_t t;
        pthread_create(&t, NULL, thread_main, NULL);
        pthread_join(t, NULL);
        printf("main alive\n");
    } else if (!strcmp(argv[1], "trap")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigsys;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSYS, &sa, NULL);
        report(call());
        printf("no trap\n");
    } else if (!strcmp(argv[1], "trace")) {
        return trace();
    } else if (!strcmp(argv[1], "signal")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        report(call());
    } else {
        fprintf(stderr, "probe: unknown mode %s\n", argv[1]);
        return 2;
    }
    return 0;
}
