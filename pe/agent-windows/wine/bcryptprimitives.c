/* A stand-in bcryptprimitives.dll for Wine 8 (Debian 12), used only by the Wine tests.
 *
 * Rust's standard library seeds its hash maps with ProcessPrng from bcryptprimitives.dll, which
 * every Windows since 10 has but Wine only gained in 9.x; without it no Rust program starts
 * under Debian 12's Wine. This answers ProcessPrng from RtlGenRandom (advapi32's
 * SystemFunction036). scripts/test-agent-wine builds it into the test prefix's system32.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG n = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        length -= n;
    }
    return TRUE;
}
