#ifndef PGEVENTS_LIBFUZZER_H
#define PGEVENTS_LIBFUZZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// libFuzzer's entry point for programs that have their own main (LLVM 11 and later): reads libFuzzer's options
// and corpus directories from the command line and calls `callback` with every input. `-sanitize=fuzzer` links it.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

// Runs libFuzzer and exits with its status. A fuzz target's main.swift calls this: SwiftPM renames an
// executable's entry point and aliases `main` to it, so libFuzzer's own `main` is never linked.
__attribute__((noreturn)) static inline void pgevents_fuzz_run(int argc, char **argv, int (*callback)(const uint8_t *data, size_t size)) {
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback));
}

#endif
