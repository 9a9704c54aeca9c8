package bpf

// Regenerating needs clang and libbpf's headers (bpf/bpf_helpers.h); building
// does not, since the output is committed. Only amd64 is generated: the
// kretprobes read the return register through x86's pt_regs.
//go:generate go tool bpf2go -target amd64 probes probes.c -- -O2 -g -Wall -Werror
