"""The instance image stackops-check launches: a 1 MiB raw disk whose boot sector prints a marker
line on the first serial port and halts.

Nova 2011.2 boots a machine image without a kernel from its disk (libvirt.xml.template:41-42,
`<boot dev="hd"/>`) and keeps the guest's first serial port in `console.log`, which EC2
GetConsoleOutput returns (nova/virt/libvirt_conn.py:674-692). So a boot sector that writes one
line to COM1 proves the whole path: Glance upload, scheduling, the image fetched to the compute
node, libvirt starting QEMU/KVM, and the console log read back through the API.

The code is 16-bit real-mode x86, written here as bytes with the instruction each one encodes (no
assembler at build time). The line carries an 8-digit hex id, zeros in the shipped image:
stackops-check puts a fresh id in for every run, so an old console log cannot pass. Only this
module knows the layout; agent.py installs the result as /usr/share/stackops/instance.img.
"""

from __future__ import annotations

SECTOR = 512
IMAGE_SIZE = 1024 * 1024  # 1 MiB: a disk any hypervisor and Glance take
LOAD_ADDRESS = 0x7C00  # where the BIOS loads the boot sector (real mode, CS:IP 0:7C00)
COM1 = 0x3F8
ID_DIGITS = 8
PLACEHOLDER_ID = "0" * ID_DIGITS
MARKER_PREFIX = "STACKOPS-CHECK-INSTANCE"


def marker(instance_id: str = PLACEHOLDER_ID) -> str:
    """The line the image prints: `STACKOPS-CHECK-INSTANCE <8 hex digits> up`."""
    if len(instance_id) != ID_DIGITS or any(c not in "0123456789abcdef" for c in instance_id):
        raise ValueError(f"instance id {instance_id!r} is not {ID_DIGITS} lower-case hex digits")
    return f"{MARKER_PREFIX} {instance_id} up"


def _out(port: int, value: int) -> bytes:
    """mov dx, port; mov al, value; out dx, al."""
    return bytes([0xBA, port & 0xFF, port >> 8, 0xB0, value, 0xEE])


def boot_sector(instance_id: str = PLACEHOLDER_ID) -> bytes:
    """The 512-byte MBR: set up COM1 (115200 8N1), print the marker line, halt for ever."""
    message = f"\r\n{marker(instance_id)}\r\n".encode("ascii") + b"\0"
    head = (
        bytes([0xFA])  # cli
        + bytes([0x31, 0xC0])  # xor ax, ax
        + bytes([0x8E, 0xD8])  # mov ds, ax
        + bytes([0x8E, 0xD0])  # mov ss, ax
        + bytes([0xBC, 0x00, 0x7C])  # mov sp, 0x7c00
        + bytes([0xFC])  # cld (lodsb counts up)
        + _out(COM1 + 1, 0x00)  # IER: no interrupts
        + _out(COM1 + 3, 0x80)  # LCR: DLAB on, to set the divisor
        + _out(COM1 + 0, 0x01)  # DLL: divisor 1 = 115200 baud
        + _out(COM1 + 1, 0x00)  # DLM
        + _out(COM1 + 3, 0x03)  # LCR: 8 data bits, no parity, 1 stop bit, DLAB off
        + _out(COM1 + 2, 0xC7)  # FCR: FIFOs on and cleared
        + _out(COM1 + 4, 0x03)  # MCR: DTR, RTS
    )
    # mov si, <message>: its address is known once the code's length is
    mov_si_len = 3
    loop = (
        bytes([0xAC])  # next: lodsb
        + bytes([0x84, 0xC0])  # test al, al
        + bytes([0x74, 0x00])  # jz done (patched below)
        + bytes([0x88, 0xC4])  # mov ah, al
        + bytes([0xBA, (COM1 + 5) & 0xFF, (COM1 + 5) >> 8])  # mov dx, LSR
        + bytes([0xEC])  # wait: in al, dx
        + bytes([0xA8, 0x20])  # test al, 0x20 (transmitter holding register empty)
        + bytes([0x74, 0xFB])  # jz wait (-5)
        + bytes([0xBA, COM1 & 0xFF, COM1 >> 8])  # mov dx, THR
        + bytes([0x88, 0xE0])  # mov al, ah
        + bytes([0xEE])  # out dx, al
        + bytes([0xEB, 0x00])  # jmp next (patched below)
    )
    done = bytes([0xFA, 0xF4, 0xEB, 0xFC])  # done: cli; hlt; jmp done (-4)
    code = bytearray(loop)
    code[4] = len(loop) - 5  # jz done: from the end of the jz to the end of the loop
    code[-1] = (-len(loop)) & 0xFF  # jmp next: back to the loop's first byte
    msg_at = LOAD_ADDRESS + len(head) + mov_si_len + len(loop) + len(done)
    body = head + bytes([0xBE, msg_at & 0xFF, msg_at >> 8]) + bytes(code) + done + message
    if len(body) > SECTOR - 2 - 64:  # leave the partition table area (446-509) empty
        raise AssertionError(f"boot sector code is {len(body)} bytes")
    return body + b"\0" * (SECTOR - 2 - len(body)) + b"\x55\xaa"


def build_instance_image(instance_id: str = PLACEHOLDER_ID) -> bytes:
    """The 1 MiB raw disk: the boot sector, then zeros."""
    return boot_sector(instance_id) + b"\0" * (IMAGE_SIZE - SECTOR)
