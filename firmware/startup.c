/* Reset and vector table for the QEMU Cortex-M boards, and the instruction counter.
 *
 * No CMSIS device startup is needed: Reset_Handler copies .data, clears .bss, paints the stack
 * (to measure its high-water mark), enables the FPU/MVE where the core has one, starts SysTick
 * and calls main(). Output and exit go through newlib's semihosting (librdimon). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start__[], __bss_end__[];
extern uint32_t __stack_limit[], __stack_top[];
extern int main(void);
extern void __libc_init_array(void);
extern void initialise_monitor_handles(void);

#define STACK_PAINT 0xC5C5C5C5u

/* SysTick registers (ARMv7-M / ARMv8-M system control space). */
#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define CPACR (*(volatile uint32_t*)0xE000ED88u)

static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { ++systick_wraps; }

/* SysTick counts down from 2^24 - 1 on the core clock; each wrap is counted in the interrupt.
 * With QEMU's -icount shift=0 the clock follows executed instructions (board_calibrate says
 * how many per tick), so differences of board_ticks() count instructions. */
uint64_t board_ticks(void) {
  uint32_t wraps, value;
  do {
    wraps = systick_wraps;
    value = SYST_CVR;
  } while (wraps != systick_wraps);
  return ((uint64_t)wraps << 24) + (0xFFFFFFu - value);
}

/* Ticks taken by a loop of exactly 2 * iterations instructions (subs + bne). */
uint64_t board_calibrate(uint32_t iterations) {
  const uint64_t start = board_ticks();
  __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(iterations) : : "cc");
  return board_ticks() - start;
}

/* Bytes of stack ever used: the painted words the program has overwritten. */
uint32_t board_stack_used(void) {
  const uint32_t* p = __stack_limit;
  while (p < __stack_top && *p == STACK_PAINT) ++p;
  return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

uint32_t board_stack_size(void) { return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)__stack_limit); }

/* -nostartfiles drops crti/crtn and crtbegin; __libc_init_array still calls _init and _fini,
 * and C++ statics with destructors register them against __dso_handle. */
void* __dso_handle = 0;
void _init(void) {}
void _fini(void) {}

void Reset_Handler(void) {
  memcpy(__data_start, __data_load, (size_t)((char*)__data_end - (char*)__data_start));
  memset(__bss_start__, 0, (size_t)((char*)__bss_end__ - (char*)__bss_start__));
  /* Paint the stack below the current frame (a few words above are in use by this call). */
  uint32_t* sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t* p = __stack_limit; p < sp - 16; ++p) *p = STACK_PAINT;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  CPACR |= 0xFu << 20; /* CP10/CP11 full access: the FPU, and Helium on the M55 */
  __asm__ volatile("dsb\n\tisb");
#endif
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0u;
  SYST_CSR = 7u; /* processor clock, interrupt on wrap, enable */
  initialise_monitor_handles();
  __libc_init_array();
  exit(main());
}

static void Default_Handler(void) {
  for (;;) {
  }
}

static void HardFault_Handler(void) { exit(3); /* semihosting still works in a fault handler */ }

typedef void (*vector_t)(void);
__attribute__((section(".vectors"), used)) const vector_t vector_table[16 + 32] = {
    (vector_t)__stack_top, Reset_Handler, Default_Handler, HardFault_Handler,
    HardFault_Handler,     HardFault_Handler, HardFault_Handler, Default_Handler,
    Default_Handler,       Default_Handler, Default_Handler, Default_Handler,
    Default_Handler,       Default_Handler, Default_Handler, SysTick_Handler,
};
