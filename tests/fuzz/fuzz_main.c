/* fuzz_main.c — runs a fuzz target without libFuzzer, as an ordinary test:
 * every file of the corpus folder given as argv[1], then a fixed number of
 * deterministic mutations of each (byte flips, inserts, cuts, splices), so
 * that the sanitizer build exercises the parser on inputs nobody wrote.
 * argv[2], if given, is the number of mutations per file (default
 * MUTATIONS): a whole-session target costs a login per input.
 * With -fsanitize=fuzzer, libFuzzer's own main is used instead
 * (-DPOSTERN_LIBFUZZER leaves this file empty). */
#ifndef POSTERN_LIBFUZZER
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUTATIONS 20000
#define FUZZ_INPUT_MAX 16384   /* run-long: -max_len for the session targets */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t mutate(uint8_t *buf, size_t len, const uint8_t *other,
		     size_t olen)
{
	static const uint8_t interesting[] = { '\r', '\n', '.', '\0', ' ', '=',
					       ':', '[', ']', ',', 0xff, '@' };
	size_t pos = len ? next() % len : 0;

	switch (next() % 5) {
	case 0:                                   /* flip a byte */
		if (len)
			buf[pos] ^= (uint8_t)(1u << (next() % 8));
		break;
	case 1:                                   /* insert an interesting byte */
		if (len < FUZZ_INPUT_MAX) {
			memmove(buf + pos + 1, buf + pos, len - pos);
			buf[pos] = interesting[next() % sizeof(interesting)];
			len++;
		}
		break;
	case 2:                                   /* cut */
		if (len) {
			size_t n = 1 + next() % (len - pos);

			memmove(buf + pos, buf + pos + n, len - pos - n);
			len -= n;
		}
		break;
	case 3:                                   /* splice from another seed */
		if (olen) {
			size_t from = next() % olen, n = 1 + next() % (olen - from);

			if (pos + n > FUZZ_INPUT_MAX)
				n = FUZZ_INPUT_MAX - pos;
			memcpy(buf + pos, other + from, n);
			if (pos + n > len)
				len = pos + n;
		}
		break;
	default:                                  /* repeat a piece */
		if (len && len * 2 <= FUZZ_INPUT_MAX) {
			memcpy(buf + len, buf, len);
			len *= 2;
		}
		break;
	}
	return len;
}

int main(int argc, char **argv)
{
	uint8_t *seeds[256], buf[FUZZ_INPUT_MAX];
	size_t lens[256], n = 0, runs = 0;
	struct dirent *de;
	DIR *d;

	long mutations = argc == 3 ? strtol(argv[2], NULL, 10) : MUTATIONS;

	if (argc < 2 || argc > 3 || mutations < 0 ||
	    !(d = opendir(argv[1]))) {
		fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS]\n", argv[0]);
		return 2;
	}
	while ((de = readdir(d)) && n < 256) {
		char path[4096];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
		if (!(f = fopen(path, "rb")))
			continue;
		seeds[n] = malloc(FUZZ_INPUT_MAX);
		lens[n] = fread(seeds[n], 1, FUZZ_INPUT_MAX, f);
		fclose(f);
		LLVMFuzzerTestOneInput(seeds[n], lens[n]);
		runs++;
		n++;
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "%s: empty corpus\n", argv[1]);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		for (long m = 0; m < mutations; m++) {
			size_t len = lens[i];
			size_t o = next() % n;

			memcpy(buf, seeds[i], len);
			for (int k = 1 + (int)(next() % 4); k > 0; k--)
				len = mutate(buf, len, seeds[o], lens[o]);
			LLVMFuzzerTestOneInput(buf, len);
			runs++;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(seeds[i]);
	printf("%zu inputs, no crash\n", runs);
	return 0;
}
#endif
