/* fuzz/fuzz.h — what every libFuzzer target here shares: the entry point's
 * prototype and CHECK, which stops the run (a crash libFuzzer reports, with
 * the input) when a property of the parser's result does not hold. */
#ifndef FLEET_FUZZ_H
#define FLEET_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond))                                                                     \
            __builtin_trap();                                                            \
    } while (0)

#endif /* FLEET_FUZZ_H */
