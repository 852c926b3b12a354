#include "config.h"
#include <string.h>
#include "uart.h"

enum {
    REG_DATA = 0, REG_IER = 1, REG_IIR_FCR = 2, REG_LCR = 3,
    REG_MCR = 4, REG_LSR = 5, REG_MSR = 6, REG_SCR = 7,
};
#define LCR_DLAB   0x80
#define MCR_LOOP   0x10
#define IER_RDI    0x01
#define IER_THRI   0x02
#define LSR_DR     0x01
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define IIR_NONE   0x01
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define FCR_ENABLE 0x01
#define FCR_CLR_RX 0x02

/* Recompute the interrupt line; called with the lock held. */
static void uart_update_irq(struct uart *u)
{
    bool level = ((u->ier & IER_RDI) && u->rx_count) ||
                 ((u->ier & IER_THRI) && u->thr_interrupt);
    if (level != u->irq_level) {
        u->irq_level = level;
        if (u->set_irq)
            u->set_irq(u->opaque, level);
    }
}

void uart_init(struct uart *u, void (*output)(void *, uint8_t),
               void (*set_irq)(void *, bool), void *opaque)
{
    memset(u, 0, sizeof(*u));
    pthread_mutex_init(&u->lock, NULL);
    u->output = output;
    u->set_irq = set_irq;
    u->opaque = opaque;
    u->dll = 1; /* 115200 baud */
}

void uart_destroy(struct uart *u)
{
    pthread_mutex_destroy(&u->lock);
}

static void rx_push(struct uart *u, uint8_t b)
{
    if (u->rx_count == UART_RX_FIFO)
        return; /* overrun: a real 16550 drops it too */
    u->rx[(u->rx_head + u->rx_count) % UART_RX_FIFO] = b;
    u->rx_count++;
}

void uart_io_write(struct uart *u, unsigned offset, uint8_t value)
{
    pthread_mutex_lock(&u->lock);
    switch (offset & 7) {
    case REG_DATA:
        if (u->lcr & LCR_DLAB) {
            u->dll = value;
        } else {
            if (u->mcr & MCR_LOOP)
                rx_push(u, value);
            else if (u->output)
                u->output(u->opaque, value);
            /* The byte left at once, so the holding register is empty again. */
            u->thr_interrupt = true;
        }
        break;
    case REG_IER:
        if (u->lcr & LCR_DLAB) {
            u->dlm = value;
        } else {
            /* Enabling THRI with an empty THR raises the interrupt at once. */
            if ((value & IER_THRI) && !(u->ier & IER_THRI))
                u->thr_interrupt = true;
            u->ier = value & 0x0f;
        }
        break;
    case REG_IIR_FCR:
        u->fcr = value & 0xc9;
        if (value & FCR_CLR_RX)
            u->rx_count = 0;
        break;
    case REG_LCR:
        u->lcr = value;
        break;
    case REG_MCR:
        u->mcr = value & 0x1f;
        break;
    case REG_SCR:
        u->scr = value;
        break;
    default: /* LSR and MSR are read-only */
        break;
    }
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

uint8_t uart_io_read(struct uart *u, unsigned offset)
{
    uint8_t v = 0xff;

    pthread_mutex_lock(&u->lock);
    switch (offset & 7) {
    case REG_DATA:
        if (u->lcr & LCR_DLAB) {
            v = u->dll;
        } else if (u->rx_count) {
            v = u->rx[u->rx_head];
            u->rx_head = (u->rx_head + 1) % UART_RX_FIFO;
            u->rx_count--;
        } else {
            v = 0;
        }
        break;
    case REG_IER:
        v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
        break;
    case REG_IIR_FCR:
        if ((u->ier & IER_RDI) && u->rx_count) {
            v = IIR_RDI;
        } else if ((u->ier & IER_THRI) && u->thr_interrupt) {
            v = IIR_THRI;
            u->thr_interrupt = false; /* reading IIR acknowledges THRE */
        } else {
            v = IIR_NONE;
        }
        if (u->fcr & FCR_ENABLE)
            v |= 0xc0;
        break;
    case REG_LCR:
        v = u->lcr;
        break;
    case REG_MCR:
        v = u->mcr;
        break;
    case REG_LSR:
        v = LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0);
        break;
    case REG_MSR:
        /* In loopback the modem inputs follow the outputs; otherwise report
         * a connected line (CTS, DSR, DCD) so guests don't wait for one. */
        if (u->mcr & MCR_LOOP)
            v = (uint8_t)(((u->mcr & 0x02) << 3) | ((u->mcr & 0x01) << 5) |
                          ((u->mcr & 0x04) << 4) | ((u->mcr & 0x08) << 4));
        else
            v = 0xb0;
        break;
    case REG_SCR:
        v = u->scr;
        break;
    }
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return v;
}

unsigned uart_receive(struct uart *u, const uint8_t *buf, unsigned len)
{
    unsigned taken = 0;

    pthread_mutex_lock(&u->lock);
    while (taken < len && u->rx_count < UART_RX_FIFO)
        rx_push(u, buf[taken++]);
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return taken;
}

void uart_save(struct uart *u, struct uart_state *s)
{
    pthread_mutex_lock(&u->lock);
    memset(s, 0, sizeof(*s));
    s->ier = u->ier; s->lcr = u->lcr; s->mcr = u->mcr; s->scr = u->scr;
    s->dll = u->dll; s->dlm = u->dlm; s->fcr = u->fcr;
    s->thr_interrupt = u->thr_interrupt;
    s->rx_count = (uint8_t)u->rx_count;
    for (unsigned i = 0; i < u->rx_count; i++)
        s->rx[i] = u->rx[(u->rx_head + i) % UART_RX_FIFO];
    pthread_mutex_unlock(&u->lock);
}

void uart_load(struct uart *u, const struct uart_state *s)
{
    pthread_mutex_lock(&u->lock);
    u->ier = s->ier & 0x0f; u->lcr = s->lcr; u->mcr = s->mcr & 0x1f; u->scr = s->scr;
    u->dll = s->dll; u->dlm = s->dlm; u->fcr = s->fcr;
    u->thr_interrupt = s->thr_interrupt != 0;
    u->rx_head = 0;
    u->rx_count = s->rx_count > UART_RX_FIFO ? UART_RX_FIFO : s->rx_count;
    memcpy(u->rx, s->rx, u->rx_count);
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
}
