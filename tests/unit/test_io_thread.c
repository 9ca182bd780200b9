/* Unit test: loop-owned objects are checked
 * against the loop's thread (IO_ON_LOOP, builds without NDEBUG). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/io_conn.h"

static struct io_worker w;
static uv_loop_t loop;

static void *thr__find(void *arg)
{
	(void)arg;
	io_worker_find(&w, 1);   /* not the loop's thread: aborts */
	return NULL;
}

/* Runs fn in a child; returns its wait status. */
static int fork_status(void (*fn)(void))
{
	pid_t pid = fork();
	int st = 0;

	if (pid == 0) {
		fn();
		_exit(0);
	}
	waitpid(pid, &st, 0);
	return st;
}

static void from_other_thread(void)
{
	pthread_t t;

	pthread_create(&t, NULL, thr__find, NULL);
	pthread_join(t, NULL);
}

static void from_loop_thread(void)
{
	io_worker_register(&w, 7, &w);
	if (io_worker_find(&w, 7) != &w)
		_exit(2);
	io_worker_unregister(&w, 7);
}

static void *thr__adopt(void *arg)
{
	(void)arg;
	io_worker_set_thread(&w);   /* this thread runs the loop now */
	from_loop_thread();
	return NULL;
}

static void after_set_thread(void)
{
	pthread_t t;

	pthread_create(&t, NULL, thr__adopt, NULL);
	pthread_join(t, NULL);
	io_worker_find(&w, 1);   /* the init thread is not the loop's any more */
}

static void test_other_thread_aborts(void **state)
{
	int st = fork_status(from_other_thread);

	(void)state;
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}

static void test_loop_thread_passes(void **state)
{
	int st = fork_status(from_loop_thread);

	(void)state;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_set_thread_moves_the_owner(void **state)
{
	int st = fork_status(after_set_thread);

	(void)state;
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_other_thread_aborts),
		cmocka_unit_test(test_loop_thread_passes),
		cmocka_unit_test(test_set_thread_moves_the_owner),
	};

#ifdef NDEBUG
	return 77;   /* nothing is checked: skip */
#endif
	uv_loop_init(&loop);
	io_worker_init(&w, &loop, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
