/* kws_detect: wake word detection over a feature file with the kwsint C library, printing what kwsint-run prints.
 *
 *   kws_detect MODEL.kwsq FEATURES.npy [--backend NAME] [--frame-ms MS] [--memory copy|in-place] SETTINGS
 *     a dense model:           --threshold P --smoothing-steps W --lockout-steps L [--hop N]
 *     a microWakeWord graph:   --threshold P --sliding-window N
 *
 * --memory in-place loads the model as a device without a heap would (docs/c-api.md, "Memory"): into an arena
 * of kws_model_arena_bytes, reading the weights where they lie in the blob, with the detector or stream in
 * memory the program gives (kws_detector_init, kws_stream_init). It prints the same lines.
 *
 * FEATURES is a .npy array of little-endian float32 frames [frames][dim] (np.save of a C-order array): LFBE
 * frames for a dense model, the microfrontend's features for a graph (uint16 values / 25.6, as pymicro-features
 * gives them). The frames are read and run a chunk at a time, in constant memory: a dense model through a
 * kws_detector; a graph through kws_stream_invoke, one invoke per input tensor's frames, with ESPHome's feature
 * quantizer and sliding-window rule (docs/arithmetic.md 12, kwsint/engine/graph_detector.py).
 *
 * The settings are command-line arguments because kwsint.h does not expose the blob's metadata JSON (where
 * kwsint-run reads the operating point and microWakeWord's settings) nor its frame shift. The values kwsint-run
 * used are in its summary line: hop, smoothing_steps, lockout_steps (and threshold_q16 = round(P * 65536)) for
 * a dense model; probability_cutoff and sliding_window_size for a graph. --hop defaults to the model's frame
 * stride and --frame-ms (only used for the times printed) to 10, kwsint-run's frame shift for both kinds.
 *
 * Output: the JSON lines of kwsint-run MODEL FEATURES, byte for byte: one per detection, one for the stream and
 * a summary (with the backend this program ran on). Stream names are escaped as JSON for ASCII only: a
 * non-ASCII file name is printed as its raw bytes, where kwsint-run writes \uXXXX escapes.
 * Exit status 0; 1 for a bad feature file (one line on stderr naming the file and the field); 2 for bad
 * arguments or a model that does not load.
 *
 * Build: scripts/build-c-lib TARGET example (csrc/Makefile's example target), see examples/README.md.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint.h"

enum { CHUNK_FRAMES = 256 };                     /* frames read and pushed at a time */
enum { MIN_SLICES_BEFORE_DETECTION = 100 };      /* ESPHome's cool-off, in frames, at a start and after a detection */
enum { MAX_SLIDING_WINDOW = 1024 };

static const char *prog = "kws_detect";

/* kwsint.h's kws_status names (the header has no function that returns them). */
static const char *status_name(kws_status st) {
  static const char *names[] = {"KWS_OK", "KWS_ERR_ARGUMENT", "KWS_ERR_TRUNCATED", "KWS_ERR_MAGIC",
                                "KWS_ERR_VERSION", "KWS_ERR_CHECKSUM", "KWS_ERR_FIELD", "KWS_ERR_SIZE",
                                "KWS_ERR_NOMEM", "KWS_ERR_BACKEND"};
  return (unsigned)st < sizeof names / sizeof *names ? names[st] : "unknown status";
}

static void fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(status);
}

/* --- numbers as Python's json.dumps writes them ---------------------------------------------------------- */

/* repr(x) for x >= 0: the fewest significant digits that read back as x; exponent form below 1e-4 and from 1e16. */
static void py_repr(double x, char *out, size_t size) {
  char e[40], digits[20], *o = out;
  int prec = 1;
  for (; prec < 17; prec++) {
    snprintf(e, sizeof e, "%.*e", prec - 1, x);
    if (strtod(e, NULL) == x) break;
  }
  snprintf(e, sizeof e, "%.*e", prec - 1, x); /* "d.ddde+XX" */
  int n = 0;
  const char *p = e;
  for (; *p != 'e'; p++)
    if (*p != '.') digits[n++] = *p;
  digits[n] = 0;
  int exp10 = atoi(p + 1), point = exp10 + 1; /* x = 0.DIGITS * 10^point */
  if (point <= -4 || point > 16) {
    snprintf(out, size, "%c%s%se%c%02d", digits[0], n > 1 ? "." : "", digits + 1, exp10 < 0 ? '-' : '+',
             abs(exp10));
    return;
  }
  if (size < 48) abort(); /* point in [-3, 16], at most 17 digits */
  if (point <= 0) { /* 0.000DIGITS */
    o += sprintf(o, "0.");
    for (int i = point; i < 0; i++) *o++ = '0';
    strcpy(o, digits);
  } else if (point >= n) { /* DIGITS000.0 */
    o += sprintf(o, "%s", digits);
    for (int i = n; i < point; i++) *o++ = '0';
    strcpy(o, ".0");
  } else { /* DI.GITS */
    sprintf(o, "%.*s.%s", point, digits, digits + point);
  }
}

/* repr(round(x, ndigits)): printf rounds the exact binary value half to even, as Python's round does. */
static const char *py_round(double x, int ndigits, char *out, size_t size) {
  char fixed[64];
  snprintf(fixed, sizeof fixed, "%.*f", ndigits, x);
  py_repr(strtod(fixed, NULL), out, size);
  return out;
}

/* A string as a JSON literal (json.dumps' escapes for ASCII). */
static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c == '\n') fputs("\\n", stdout);
    else if (c == '\r') fputs("\\r", stdout);
    else if (c == '\t') fputs("\\t", stdout);
    else if (c == '\b') fputs("\\b", stdout);
    else if (c == '\f') fputs("\\f", stdout);
    else if (c < 0x20 || c == 0x7f) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

/* --- the feature file ------------------------------------------------------------------------------------ */

typedef struct {
  FILE *f;
  const char *path;
  uint64_t frames, read; /* frames in the file, frames read so far */
  size_t dim;
} features;

/* The text of `key`'s value in the .npy header dict, e.g. "(525, 20), }" for 'shape'; NULL if absent. */
static const char *header_value(const char *header, const char *key) {
  const char *p = strstr(header, key);
  if (!p) return NULL;
  p += strlen(key);
  while (*p == ' ') p++;
  return *p == ':' ? p + 1 + strspn(p + 1, " ") : NULL;
}

/* Up to n bytes of header text for an error message, non-printable bytes as \xNN: the message stays one line. */
static const char *excerpt(const char *s, size_t n) {
  static char out[4 * 24 + 1];
  char *o = out;
  if (n > 24) n = 24;
  for (size_t i = 0; i < n && s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    o += c >= 0x20 && c < 0x7f ? sprintf(o, "%c", c) : sprintf(o, "\\x%02x", c);
  }
  *o = 0;
  return out;
}

static uint64_t parse_dim(const char **p, const char *path) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(*p, &end, 10);
  if (end == *p || errno || **p == '-')
    fail(1, "%s: shape: expected (frames, features), got %s", path, excerpt(*p, 20));
  *p = end + strspn(end, " ");
  return v;
}

/* Opens and checks a .npy file: float32 little-endian, C order, 2-D, `dim` features a frame, and exactly the
 * bytes its shape declares. Every problem is one line naming the file and the field, before any frame is run. */
static features open_features(const char *path, size_t dim) {
  features ft = {fopen(path, "rb"), path, 0, 0, dim};
  if (!ft.f) fail(1, "%s: %s", path, strerror(errno));
  unsigned char pre[12];
  if (fread(pre, 1, 10, ft.f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
    fail(1, "%s: magic: expected a .npy file (\\x93NUMPY)", path);
  size_t header_len, offset;
  if (pre[6] == 1) {
    header_len = pre[8] | (size_t)pre[9] << 8;
    offset = 10;
  } else if (pre[6] == 2 || pre[6] == 3) {
    if (fread(pre + 10, 1, 2, ft.f) != 2) fail(1, "%s: header_len: expected 4 bytes, got fewer", path);
    header_len = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    offset = 12;
  } else {
    fail(1, "%s: version: expected 1, 2 or 3, got %d", path, pre[6]);
  }
  if (header_len > 65536) fail(1, "%s: header_len: expected at most 65536 bytes, got %zu", path, header_len);
  char *header = malloc(header_len + 1);
  if (!header) fail(1, "%s: out of memory", path);
  if (fread(header, 1, header_len, ft.f) != header_len)
    fail(1, "%s: header: expected %zu bytes, got fewer", path, header_len);
  header[header_len] = 0;
  const char *v = header_value(header, "'descr'");
  if (!v || (strncmp(v, "'<f4'", 5) != 0))
    fail(1, "%s: descr: expected '<f4' (little-endian float32), got %s", path, v ? excerpt(v, 8) : "none");
  v = header_value(header, "'fortran_order'");
  if (!v || strncmp(v, "False", 5) != 0)
    fail(1, "%s: fortran_order: expected False, got %s", path, v ? excerpt(v, 5) : "none");
  v = header_value(header, "'shape'");
  if (!v || *v != '(') fail(1, "%s: shape: expected (frames, features), got %s", path, v ? excerpt(v, 20) : "none");
  v++;
  ft.frames = parse_dim(&v, path);
  if (*v++ != ',') fail(1, "%s: shape: expected (frames, features), got a 1-D array", path);
  uint64_t got_dim = parse_dim(&v, path);
  if (*v != ')') fail(1, "%s: shape: expected (frames, features), got more dimensions", path);
  if (got_dim != dim) fail(1, "%s: shape: expected %zu features a frame (the model's), got %llu", path, dim,
                           (unsigned long long)got_dim);
  free(header);
  /* the data: exactly frames * dim float32 values after the header */
  if (ft.frames > UINT64_MAX / 4 / dim) fail(1, "%s: shape: %llu frames is too many", path,
                                             (unsigned long long)ft.frames);
  long start = (long)(offset + header_len), end = -1;
  if (fseek(ft.f, 0, SEEK_END) != 0 || (end = ftell(ft.f)) < 0 || fseek(ft.f, start, SEEK_SET) != 0)
    fail(1, "%s: %s", path, strerror(errno));
  uint64_t want = ft.frames * dim * 4, have = (uint64_t)(end - start);
  if (have != want) fail(1, "%s: data: expected %llu bytes for shape (%llu, %zu), got %llu", path,
                         (unsigned long long)want, (unsigned long long)ft.frames, dim, (unsigned long long)have);
  return ft;
}

/* Reads the next frames (at most CHUNK_FRAMES) into buf; 0 at the end. A value that is not finite is refused.
 * The file's little-endian float32 values are read as they are: a little-endian CPU, as every target is. */
static size_t read_frames(features *ft, float *buf) {
  size_t n = ft->frames - ft->read < CHUNK_FRAMES ? (size_t)(ft->frames - ft->read) : CHUNK_FRAMES;
  if (n && fread(buf, sizeof(float) * ft->dim, n, ft->f) != n) fail(1, "%s: data: read failed", ft->path);
  for (size_t i = 0; i < n * ft->dim; i++) {
    if (!isfinite(buf[i]))
      fail(1, "%s: data: expected finite values, got %g in frame %llu", ft->path, buf[i],
           (unsigned long long)(ft->read + i / ft->dim));
  }
  ft->read += n;
  return n;
}

/* --- the two kinds of model ------------------------------------------------------------------------------ */

typedef struct {
  const char *model_path, *features_path, *backend;
  double frame_s, threshold;
  long hop, smoothing, lockout, window;
  int in_place; /* --memory in-place: the model, the detector or stream in memory this program gives */
} options;

typedef struct {
  uint64_t steps, detections;
} result;

static void print_detection(const char *name, uint64_t frame, double posterior, double frame_s) {
  char t[48], p[48];
  fputs("{\"file\": ", stdout);
  print_json_string(name);
  printf(", \"time\": %s, \"posterior\": %s}\n", py_round((double)(frame + 1) * frame_s, 3, t, sizeof t),
         py_round(posterior, 6, p, sizeof p));
  fflush(stdout); /* each detection as soon as its step runs */
}

static void print_stream(const features *ft, result r, double peak) {
  char p[48];
  fputs("{\"stream\": ", stdout);
  print_json_string(ft->path);
  printf(", \"frames\": %llu, \"steps\": %llu, \"detections\": %llu, \"peak_posterior\": %s}\n",
         (unsigned long long)ft->read, (unsigned long long)r.steps, (unsigned long long)r.detections,
         py_round(peak, 6, p, sizeof p));
}

/* The summary line up to its settings, which the caller prints with the closing brace. */
static void print_summary(const features *ft, result r, const kws_model *model, double frame_s) {
  char h[48];
  printf("{\"summary\": true, \"inputs\": 1, \"failed\": 0, \"streams\": 1, \"steps\": %llu, \"detections\": %llu, "
         "\"hours\": %s, \"backend\": \"%s\", ", (unsigned long long)r.steps, (unsigned long long)r.detections,
         py_round((double)ft->read * frame_s / 3600, 6, h, sizeof h), kws_backend_name(kws_model_backend(model)));
}

/* A dense model: the frames through a kws_detector (steps every hop frames, smoothing, threshold, lockout). */
static void run_dense(const kws_model *model, const options *o) {
  kws_model_info info;
  kws_model_get_info(model, &info);
  kws_detector_config cfg = {(int)(o->hop ? o->hop : info.frame_stride), (int)o->smoothing,
                             (int32_t)floor(o->threshold * 65536.0 + 0.5), (int)o->lockout};
  kws_detector *det = NULL;
  void *det_mem = NULL; /* --memory in-place: the detector (its stream inside) in memory of ours */
  size_t det_bytes = kws_detector_bytes(model, &cfg);
  if (o->in_place && !(det_mem = malloc(det_bytes ? det_bytes : 1))) fail(1, "out of memory");
  kws_status st = o->in_place ? kws_detector_init(model, &cfg, det_mem, det_bytes, &det)
                              : kws_detector_create(model, &cfg, &det);
  if (st != KWS_OK) fail(2, "detector settings (hop %d, smoothing %d steps, lockout %d steps): refused (%s)",
                         cfg.hop, cfg.smoothing, cfg.lockout, status_name(st));
  features ft = open_features(o->features_path, (size_t)info.feature_dim);
  float *frames = malloc(sizeof(float) * CHUNK_FRAMES * ft.dim);
  uint64_t frame[CHUNK_FRAMES]; /* a push of n frames runs at most ceil(n / hop) <= n steps */
  int32_t smoothed[CHUNK_FRAMES];
  uint8_t fired[CHUNK_FRAMES];
  kws_detector_steps steps = {CHUNK_FRAMES, frame, NULL, NULL, smoothed, fired};
  if (!frames) fail(1, "out of memory");
  result r = {0, 0};
  int32_t peak = 0;
  for (size_t n; (n = read_frames(&ft, frames)) > 0;) {
    size_t k = 0;
    if ((st = kws_detector_push(det, frames, n, &steps, &k)) != KWS_OK)
      fail(1, "%s: kws_detector_push failed (%s)", ft.path, status_name(st));
    for (size_t i = 0; i < k; i++) {
      if (smoothed[i] > peak) peak = smoothed[i];
      if (fired[i]) {
        r.detections++;
        print_detection(ft.path, frame[i], smoothed[i] / 65536.0, o->frame_s);
      }
    }
    r.steps += k;
  }
  print_stream(&ft, r, peak / 65536.0);
  print_summary(&ft, r, model, o->frame_s);
  printf("\"hop\": %d, \"smoothing_steps\": %d, \"lockout_steps\": %d, \"threshold_q16\": %ld}\n", cfg.hop,
         cfg.smoothing, cfg.lockout, (long)cfg.threshold_q16);
  fclose(ft.f);
  free(frames);
  kws_detector_free(det); /* nothing to free in place */
  free(det_mem);
}

/* ESPHome's feature quantizer: the front end's uint16 value v = round(f * 25.6) (halves to even, clamped), then
 * clamp((v * 256 + 333) / 666 - 128, -128, 127). */
static int8_t feature_code(float f) {
  double v = rint((double)f * 25.6);
  v = v < 0 ? 0 : v > 65535 ? 65535 : v;
  long code = ((long)v * 256 + 333) / 666 - 128;
  return (int8_t)(code > 127 ? 127 : code);
}

/* A microWakeWord graph as ESPHome runs it: frame by frame into the input tensor, one invoke when it is full,
 * its uint8 output into a ring of the last N; after each frame the cool-off counter moves up (to 0) while the
 * newest output is below the cutoff, and a new output is checked once the counter is 0: a detection when the
 * ring's sum is above cutoff * N, which zeroes the ring and restarts the cool-off. */
static void run_graph(const kws_model *model, const options *o) {
  kws_graph_info g;
  kws_status st = kws_model_graph_info(model, &g);
  if (st != KWS_OK || !g.output_uint8 || g.output_frames * g.output_channels != 1)
    fail(2, "%s: output: expected one uint8 value (the wake word probability)", o->model_path);
  if (o->window < 1 || o->window > MAX_SLIDING_WINDOW)
    fail(2, "--sliding-window: expected 1..%d outputs, got %ld", MAX_SLIDING_WINDOW, o->window);
  const int cutoff = (int)(o->threshold * 255), n_window = (int)o->window; /* ESPHome: int(cutoff * 255) */
  kws_stream *stream = NULL;
  void *stream_mem = o->in_place ? malloc(kws_stream_bytes(model)) : NULL; /* malloc: 8-byte aligned */
  if (o->in_place && !stream_mem) fail(1, "out of memory");
  st = o->in_place ? kws_stream_init(model, stream_mem, kws_stream_bytes(model), &stream)
                   : kws_stream_create(model, &stream);
  if (st != KWS_OK) fail(2, "the stream: refused (%s)", status_name(st));
  features ft = open_features(o->features_path, g.input_channels);
  float *frames = malloc(sizeof(float) * CHUNK_FRAMES * ft.dim);
  int8_t *input = malloc(g.input_frames * g.input_channels);
  int *ring = calloc((size_t)n_window, sizeof *ring);
  if (!frames || !input || !ring) fail(1, "out of memory");
  size_t filled = 0; /* frames in the input tensor */
  int newest = 0, cool_off = -MIN_SLICES_BEFORE_DETECTION, unchecked = 0;
  long sum = 0, peak = 0;
  result r = {0, 0};
  uint64_t t = 0; /* the frame's index in the stream */
  for (size_t n; (n = read_frames(&ft, frames)) > 0;) {
    for (size_t i = 0; i < n; i++, t++) {
      for (size_t c = 0; c < ft.dim; c++) input[filled * ft.dim + c] = feature_code(frames[i * ft.dim + c]);
      if (++filled == g.input_frames) {
        uint8_t out;
        if ((st = kws_stream_invoke(stream, input, g.input_frames * g.input_channels, &out, 1)) != KWS_OK)
          fail(1, "%s: kws_stream_invoke failed (%s)", ft.path, status_name(st));
        filled = 0;
        r.steps++;
        newest = (newest + 1) % n_window;
        sum += out - ring[newest];
        ring[newest] = out;
        unchecked = 1;
        if (sum > peak) peak = sum;
      }
      if (ring[newest] < cutoff && cool_off < 0) cool_off++;
      if (unchecked && cool_off == 0) {
        unchecked = 0;
        if (sum > (long)cutoff * n_window) {
          r.detections++;
          print_detection(ft.path, t, (double)sum / (255.0 * n_window), o->frame_s);
          memset(ring, 0, sizeof *ring * (size_t)n_window);
          sum = 0;
          cool_off = -MIN_SLICES_BEFORE_DETECTION;
        }
      }
    }
  }
  char c[48];
  print_stream(&ft, r, (double)peak / (255.0 * n_window));
  print_summary(&ft, r, model, o->frame_s);
  py_repr(o->threshold, c, sizeof c);
  printf("\"probability_cutoff\": %s, \"quantized_cutoff\": %d, \"sliding_window_size\": %d}\n", c, cutoff,
         n_window);
  fclose(ft.f);
  free(frames);
  free(input);
  free(ring);
  kws_stream_free(stream); /* nothing to free in place */
  free(stream_mem);
}

/* --- arguments and the model ----------------------------------------------------------------------------- */

static double number_arg(const char *name, const char *s, double lo, double hi) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno || !(v >= lo && v <= hi)) fail(2, "%s: expected a number in [%g, %g], got %s",
                                                                name, lo, hi, s);
  return v;
}

static long int_arg(const char *name, const char *s, long lo, long hi) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end || errno || v < lo || v > hi) fail(2, "%s: expected an integer in [%ld, %ld], got %s", name,
                                                          lo, hi, s);
  return v;
}

static void usage(void) {
  fail(2, "usage: kws_detect MODEL.kwsq FEATURES.npy [--backend NAME] [--frame-ms MS] [--memory copy|in-place] "
          "--threshold P (--smoothing-steps W --lockout-steps L [--hop N] | --sliding-window N)");
}

/* The model of the blob at path: copied (kws_model_load: the blob is freed), or with in_place built in an arena of
 * kws_model_arena_bytes (kws_model_load_into, KWS_LOAD_IN_PLACE: it reads the blob's weights where they lie, so
 * the blob stays, as a device's flash would; the arena and the blob live until the process ends). */
static kws_model *load_model(const char *path, const char *backend_name, int in_place) {
  const kws_backend *be = NULL;
  if (kws_backend_find(backend_name, &be) != KWS_OK)
    fail(2, "--backend: %s is not compiled in or not usable on this CPU", backend_name ? backend_name : "(any)");
  FILE *f = fopen(path, "rb");
  if (!f) fail(2, "%s: %s", path, strerror(errno));
  size_t size = 0, cap = 1 << 16;
  unsigned char *data = malloc(cap);
  for (size_t got; data && (got = fread(data + size, 1, cap - size, f)) > 0;) {
    size += got;
    if (size == cap) data = realloc(data, cap *= 2); /* the leak on failure ends with the process */
  }
  if (!data || ferror(f)) fail(2, "%s: cannot read the model", path);
  fclose(f);
  kws_model *model = NULL;
  kws_load_error err = {NULL, 0};
  kws_status st;
  if (in_place) {
    size_t arena_bytes = 0;
    void *arena = NULL;
    st = kws_model_arena_bytes(data, size, be, KWS_WEIGHTS_AUTO, KWS_LOAD_IN_PLACE, &arena_bytes, &err);
    if (st == KWS_OK && !(arena = malloc(arena_bytes))) fail(1, "out of memory");
    if (st == KWS_OK)
      st = kws_model_load_into(data, size, be, KWS_WEIGHTS_AUTO, KWS_LOAD_IN_PLACE, arena, arena_bytes, &model, &err);
  } else {
    st = kws_model_load(data, size, be, &model, &err);
    free(data); /* the model holds its own copies */
  }
  if (st != KWS_OK)
    fail(2, "%s: %s at byte %zu: not a loadable model (%s)", path, err.field ? err.field : "blob",
         err.offset, status_name(st));
  return model;
}

int main(int argc, char **argv) {
  options o = {NULL, NULL, NULL, 0.010, -1, 0, 0, -1, 0, 0}; /* 0 or -1: not given */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (a[0] != '-' || !a[1]) {
      if (!o.model_path) o.model_path = a;
      else if (!o.features_path) o.features_path = a;
      else usage();
      continue;
    }
    if (!v) usage();
    i++;
    if (!strcmp(a, "--backend")) o.backend = v;
    else if (!strcmp(a, "--frame-ms")) o.frame_s = number_arg(a, v, 0.001, 1e6) / 1000.0;
    else if (!strcmp(a, "--threshold")) o.threshold = number_arg(a, v, 0, 1);
    else if (!strcmp(a, "--hop")) o.hop = int_arg(a, v, 1, 1 << 20);
    else if (!strcmp(a, "--smoothing-steps")) o.smoothing = int_arg(a, v, 1, KWS_MAX_SMOOTHING);
    else if (!strcmp(a, "--lockout-steps")) o.lockout = int_arg(a, v, 0, 1 << 30);
    else if (!strcmp(a, "--sliding-window")) o.window = int_arg(a, v, 1, MAX_SLIDING_WINDOW);
    else if (!strcmp(a, "--memory")) {
      if (strcmp(v, "copy") && strcmp(v, "in-place")) fail(2, "--memory: expected copy or in-place, got %s", v);
      o.in_place = v[0] == 'i';
    }
    else usage();
  }
  if (!o.features_path || o.threshold < 0) usage();
  kws_model *model = load_model(o.model_path, o.backend, o.in_place);
  if (kws_model_kind(model) == KWS_MODEL_GRAPH) {
    if (o.window < 1 || o.smoothing || o.lockout >= 0 || o.hop)
      fail(2, "a microWakeWord model takes --threshold and --sliding-window, no --hop, --smoothing-steps or "
              "--lockout-steps");
    run_graph(model, &o);
  } else {
    if (o.smoothing < 1 || o.lockout < 0 || o.window)
      fail(2, "a dense model takes --threshold, --smoothing-steps and --lockout-steps, no --sliding-window");
    run_dense(model, &o);
  }
  kws_model_free(model); /* nothing to free in place: the arena goes with the process */
  return 0;
}
