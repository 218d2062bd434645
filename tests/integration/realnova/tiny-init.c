/* /init of the tiny instance the real-Nova libvirt test launches (tests/integration/tinyimage.py):
 * prints a marker and the kernel command line Nova's libvirt.xml.template gave it on the console
 * (ttyS0: Nova's console.log), then stays up, so the domain stays running. Built static in the
 * node's root (gcc -static), packed with /dev/console into an initramfs. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>

static void say(const char *s) {
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
    if (fd >= 0) {
        write(fd, s, strlen(s));
        close(fd);
    }
}

int main(void) {
    char cmdline[512] = {0};
    int fd;
    mount("proc", "/proc", "proc", 0, 0);
    fd = open("/proc/cmdline", O_RDONLY);
    if (fd >= 0) {
        read(fd, cmdline, sizeof cmdline - 1);
        close(fd);
    }
    say("STACKOPS-TINY-INSTANCE up cmdline: ");
    say(cmdline);
    for (;;)
        pause();
}
