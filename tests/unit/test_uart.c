/* Unit tests of the 16550 UART model (xen/uart.c). */
#include "config.h"
#include <string.h>

#include "check_main.h"
#include "uart.h"

struct sink {
    char out[256];
    unsigned n;
    bool irq;
    unsigned irq_changes;
};

static void out_fn(void *o, uint8_t b)
{
    struct sink *s = o;
    if (s->n < sizeof(s->out) - 1)
        s->out[s->n++] = (char)b;
}

static void irq_fn(void *o, bool level)
{
    struct sink *s = o;
    s->irq = level;
    s->irq_changes++;
}

enum { DATA, IER, IIR, LCR, MCR, LSR, MSR, SCR };

START_TEST(transmit)
{
    struct sink s = { 0 };
    struct uart u;
    uart_init(&u, out_fn, irq_fn, &s);
    ck_assert(uart_io_read(&u, LSR) & 0x20); /* THRE */
    for (const char *p = "hi\n"; *p; p++)
        uart_io_write(&u, DATA, (uint8_t)*p);
    ck_assert_str_eq(s.out, "hi\n");
    ck_assert(!s.irq);
    uart_destroy(&u);
}
END_TEST

START_TEST(divisor_latch)
{
    struct sink s = { 0 };
    struct uart u;
    uart_init(&u, out_fn, irq_fn, &s);
    uart_io_write(&u, LCR, 0x83);
    uart_io_write(&u, DATA, 0x0c);
    uart_io_write(&u, IER, 0x00);
    ck_assert_uint_eq(uart_io_read(&u, DATA), 0x0c);
    uart_io_write(&u, LCR, 0x03);
    ck_assert_uint_eq(s.n, 0); /* divisor writes are not output */
    ck_assert_uint_eq(uart_io_read(&u, LCR), 0x03);
    uart_io_write(&u, SCR, 0x5a);
    ck_assert_uint_eq(uart_io_read(&u, SCR), 0x5a);
    uart_destroy(&u);
}
END_TEST

START_TEST(thre_interrupt)
{
    struct sink s = { 0 };
    struct uart u;
    uart_init(&u, out_fn, irq_fn, &s);
    uart_io_write(&u, IER, 0x02);
    ck_assert(s.irq);
    ck_assert_uint_eq(uart_io_read(&u, IIR) & 0x0f, 0x02);
    ck_assert(!s.irq); /* reading IIR acknowledged it */
    ck_assert_uint_eq(uart_io_read(&u, IIR) & 0x0f, 0x01);
    uart_io_write(&u, DATA, 'x');
    ck_assert(s.irq);
    uart_io_write(&u, IER, 0x00);
    ck_assert(!s.irq);
    uart_destroy(&u);
}
END_TEST

START_TEST(receive)
{
    struct sink s = { 0 };
    struct uart u;
    uart_init(&u, out_fn, irq_fn, &s);
    ck_assert_uint_eq(uart_io_read(&u, LSR) & 0x01, 0);
    uint8_t big[100];
    for (int i = 0; i < 100; i++)
        big[i] = (uint8_t)i;
    ck_assert_uint_eq(uart_receive(&u, big, 100), UART_RX_FIFO);
    ck_assert(!s.irq); /* RDI not enabled */
    uart_io_write(&u, IER, 0x01);
    ck_assert(s.irq);
    ck_assert_uint_eq(uart_io_read(&u, IIR) & 0x0f, 0x04);
    for (int i = 0; i < UART_RX_FIFO; i++) {
        ck_assert(uart_io_read(&u, LSR) & 0x01);
        ck_assert_uint_eq(uart_io_read(&u, DATA), i);
    }
    ck_assert_uint_eq(uart_io_read(&u, LSR) & 0x01, 0);
    ck_assert(!s.irq);
    uart_destroy(&u);
}
END_TEST

START_TEST(loopback)
{
    struct sink s = { 0 };
    struct uart u;
    uart_init(&u, out_fn, irq_fn, &s);
    uart_io_write(&u, MCR, 0x10);
    uart_io_write(&u, DATA, 0xae);
    ck_assert_uint_eq(s.n, 0);
    ck_assert_uint_eq(uart_io_read(&u, DATA), 0xae);
    uart_io_write(&u, MCR, 0x1f);
    ck_assert_uint_eq(uart_io_read(&u, MSR) & 0xf0, 0xf0);
    uart_destroy(&u);
}
END_TEST

START_TEST(save_and_load)
{
    struct sink s = { 0 }, t = { 0 };
    struct uart u, v;
    uart_init(&u, out_fn, irq_fn, &s);
    uart_init(&v, out_fn, irq_fn, &t);
    uart_io_write(&u, LCR, 0x83);
    uart_io_write(&u, DATA, 3);
    uart_io_write(&u, LCR, 0x03);
    uart_io_write(&u, IER, 0x01);
    uart_receive(&u, (const uint8_t *)"abc", 3);
    uart_io_read(&u, DATA);
    struct uart_state st;
    uart_save(&u, &st);
    uart_load(&v, &st);
    ck_assert(t.irq); /* the pending receive interrupt comes along */
    ck_assert_uint_eq(uart_io_read(&v, DATA), 'b');
    ck_assert_uint_eq(uart_io_read(&v, DATA), 'c');
    uart_io_write(&v, LCR, 0x83);
    ck_assert_uint_eq(uart_io_read(&v, DATA), 3);
    st.rx_count = 200; /* hostile snapshot: clamped, no overflow */
    uart_load(&v, &st);
    uart_destroy(&u);
    uart_destroy(&v);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("uart");
    TCase *tc = tcase_create("16550");
    tcase_add_test(tc, transmit);
    tcase_add_test(tc, divisor_latch);
    tcase_add_test(tc, thre_interrupt);
    tcase_add_test(tc, receive);
    tcase_add_test(tc, loopback);
    tcase_add_test(tc, save_and_load);
    suite_add_tcase(s, tc);
    return s;
}
