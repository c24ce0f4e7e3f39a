"""In-kernel programs (eBPF): their C sources, their build with clang, their loading with libbpf.

An installed wheel carries the programs compiled (``prebuilt/``, made by ``hatch_build.py``);
a checkout compiles them on first use (``build``, with clang; ``compiler`` holds how, for
both). They are loaded through Debian's ``libbpf.so.1`` (``libbpf``); a machine without libbpf
or the kernel's BTF, or a checkout without clang, cannot load them, and the sensors that use
them fall back to what works everywhere (the proc connector).
"""
