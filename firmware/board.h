/* What the firmware needs from the board: an instruction counter and the stack's high water. */
#ifndef RC_FIRMWARE_BOARD_H_
#define RC_FIRMWARE_BOARD_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint64_t board_ticks(void);
uint64_t board_calibrate(uint32_t iterations);
uint32_t board_stack_used(void);
uint32_t board_stack_size(void);

#ifdef __cplusplus
}
#endif

#endif /* RC_FIRMWARE_BOARD_H_ */
