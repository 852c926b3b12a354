/* A 16550A UART as a PC has at 0x3f8 / IRQ 4.  Transmit is infinitely fast
 * (every byte goes straight to the output sink); receive holds a FIFO fed
 * by `xl console`.  Thread-safe: vCPU threads and the domain process's
 * main loop both call in. */
#ifndef TANDEM_UART_H
#define TANDEM_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define UART_COM1_BASE 0x3f8
#define UART_COM1_IRQ  4
#define UART_RX_FIFO   64

struct uart {
    pthread_mutex_t lock;
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    bool thr_interrupt;        /* THRE interrupt pending until IIR is read */
    uint8_t rx[UART_RX_FIFO];
    unsigned rx_head, rx_count;
    bool irq_level;
    /* Called with the lock held; must not block. */
    void (*output)(void *opaque, uint8_t byte);
    void (*set_irq)(void *opaque, bool level);
    void *opaque;
};

void uart_init(struct uart *u, void (*output)(void *, uint8_t),
               void (*set_irq)(void *, bool), void *opaque);
void uart_destroy(struct uart *u);
/* An access to register `offset` (0-7) of `size` 1. */
void uart_io_write(struct uart *u, unsigned offset, uint8_t value);
uint8_t uart_io_read(struct uart *u, unsigned offset);
/* Console input; returns how many bytes the FIFO took. */
unsigned uart_receive(struct uart *u, const uint8_t *buf, unsigned len);

/* Snapshot for save/restore. */
struct uart_state {
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr, thr_interrupt;
    uint8_t rx_count, rx[UART_RX_FIFO];
};
void uart_save(struct uart *u, struct uart_state *s);
void uart_load(struct uart *u, const struct uart_state *s);

#endif
