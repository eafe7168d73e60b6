/* Bad input for every public function: the right status, a non-empty
 * fleet_last_error() that names the function called, and nothing changed —
 * output tensors keep their contents (filled first, compared after), host
 * buffers of refused copies are untouched, allocator stats and pool
 * occupancy are unchanged. Two cpu devices (FLEET_CPU_DEVICES=2) give the
 * wrong-device cases. After-shutdown behaviour lives in static_cleanup.
 */
#include "test_util.h"

static fleet_device *d0, *d1;
static fleet_memory_stats snap0, snap1;
static fleet_stream_pool_stats psnap;

static void snapshot(void)
{
    ASSERT_OK(fleet_device_synchronize(d0));
    ASSERT_OK(fleet_memory_get_stats(d0, &snap0));
    ASSERT_OK(fleet_memory_get_stats(d1, &snap1));
    psnap = test_pool_stats(d0);
}

static void assert_unchanged_(const char *file, int line)
{
    fleet_memory_stats s0, s1;
    ASSERT_OK(fleet_memory_get_stats(d0, &s0));
    ASSERT_OK(fleet_memory_get_stats(d1, &s1));
    fleet_stream_pool_stats p = test_pool_stats(d0);
    if (s0.allocated != snap0.allocated || s0.reserved != snap0.reserved ||
        s0.live_blocks != snap0.live_blocks || s0.alloc_requests != snap0.alloc_requests ||
        s0.ooms != snap0.ooms || s1.allocated != snap1.allocated ||
        s1.live_blocks != snap1.live_blocks || s1.alloc_requests != snap1.alloc_requests ||
        p.exclusive_in_use != psnap.exclusive_in_use || p.acquired_in_use != psnap.acquired_in_use)
        test_fail_(file, line, "a refused call changed allocator stats or pool occupancy");
}

/* Texts that do not name the function called, reported together at the end
 * of each test (so one run lists them all). */
static char misnamed[2048];

static void assert_texts_named(void)
{
    if (misnamed[0]) {
        char m[2200];
        snprintf(m, sizeof m, "error texts that do not name the function called:\n%s", misnamed);
        test_fail_(__FILE__, __LINE__, m);
    }
}

/* The call fails with `want`, its text names the function, nothing changed. */
static void bad_(const char *file, int line, fleet_status got, fleet_status want, const char *expr)
{
    char fn[64];
    size_t n = strcspn(expr, "(");
    snprintf(fn, sizeof fn, "%.*s", (int)(n < sizeof fn ? n : sizeof fn - 1), expr);
    char m[1024];
    if (got != want) {
        snprintf(m, sizeof m, "%s returned %s, expected %s (%s)", expr, fleet_status_name(got),
                 fleet_status_name(want), fleet_last_error());
        test_fail_(file, line, m);
    }
    if (strstr(fleet_last_error(), fn) == NULL) {
        size_t used = strlen(misnamed);
        snprintf(misnamed + used, sizeof misnamed - used, "  line %d: %s -> \"%s\"\n", line, expr,
                 fleet_last_error());
    }
    assert_unchanged_(file, line);
}
#define BAD(expr, want) bad_(__FILE__, __LINE__, (expr), (want), #expr)

enum { M = 4, K = 3, N = 5 };
static float sentinel[64];

static fleet_tensor *filled(fleet_device *dev, fleet_dtype dt, int ndim, int64_t r, int64_t c)
{
    int64_t shape[2] = {r, c};
    fleet_tensor *t = NULL;
    ASSERT_OK(fleet_tensor_create(dev, dt, ndim, shape, &t));
    ASSERT_OK(fleet_tensor_copy_from_host(t, sentinel, fleet_tensor_nbytes(t)));
    return t;
}

static void assert_sentinel(fleet_tensor *t)
{
    float got[64];
    memset(got, 0, sizeof got);
    ASSERT_OK(fleet_tensor_copy_to_host(t, got, fleet_tensor_nbytes(t)));
    ASSERT_TRUE(memcmp(got, sentinel, fleet_tensor_nbytes(t)) == 0);
}

static void setup(void)
{
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 0, &d0));
    ASSERT_OK(fleet_device_get(FLEET_BACKEND_CPU, 1, &d1));
    for (int i = 0; i < 64; i++)
        sentinel[i] = 1000.0f + (float)i;
}

TEST(devices_and_lifecycle)
{
    setup();
    fleet_device *d = NULL;
    int n = -1;
    snapshot();
    BAD(fleet_device_count(FLEET_BACKEND_CPU, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_device_get(FLEET_BACKEND_CPU, 0, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_device_get(FLEET_BACKEND_CPU, 2, &d), FLEET_ERR_INVALID_DEVICE);
    BAD(fleet_device_get(FLEET_BACKEND_CPU, -1, &d), FLEET_ERR_INVALID_DEVICE);
    BAD(fleet_device_get((fleet_backend_kind)7, 0, &d), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_OK(fleet_device_count(FLEET_BACKEND_CUDA, &n));
    if (n == 0)
        BAD(fleet_device_get(FLEET_BACKEND_CUDA, 0, &d), FLEET_ERR_INVALID_DEVICE);
    ASSERT_TRUE(d == NULL);
    BAD(fleet_device_default(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_device_synchronize(NULL), FLEET_ERR_NULL_POINTER);
    /* A pointer that is not a fleet device. */
    static char junk[4096];
    BAD(fleet_device_synchronize((fleet_device *)junk), FLEET_ERR_INVALID_DEVICE);
    ASSERT_STR_CONTAINS(fleet_backend_name(FLEET_BACKEND_CPU), "cpu");
    ASSERT_STR_CONTAINS(fleet_backend_name(FLEET_BACKEND_CUDA), "cuda");
    ASSERT_TRUE(fleet_backend_name((fleet_backend_kind)7) != NULL);
    assert_texts_named();
}

static void noop(void *arg) { (void)arg; }

TEST(streams_and_events)
{
    setup();
    fleet_stream *s0 = NULL, *s1 = NULL, *def = NULL, *out = NULL;
    ASSERT_OK(fleet_stream_current(d0, &s0));
    ASSERT_OK(fleet_stream_current(d1, &s1));
    ASSERT_OK(fleet_stream_get_default(d0, &def));
    fleet_event *e0 = NULL;
    ASSERT_OK(fleet_event_create(d0, &e0));
    snapshot();
    BAD(fleet_stream_current(NULL, &out), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_current(d0, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_set_current(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_reset_current(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_get_default(NULL, &out), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_get_default(d0, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_acquire(NULL, &out), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_acquire(d0, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_acquire_timeout(d0, -2, &out), FLEET_ERR_INVALID_ARGUMENT);
    BAD(fleet_stream_release(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_release(def), FLEET_ERR_INVALID_ARGUMENT);
    BAD(fleet_stream_release(s0), FLEET_ERR_INVALID_ARGUMENT); /* bound, not acquired */
    BAD(fleet_stream_synchronize(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_query(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_launch_host_func(NULL, noop, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_launch_host_func(s0, NULL, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_pool_get_stats(NULL, &psnap), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_pool_get_stats(d0, NULL), FLEET_ERR_NULL_POINTER);
    ASSERT_TRUE(out == NULL);
    ASSERT_EQ(fleet_stream_id(NULL), -1);
    ASSERT_TRUE(fleet_stream_device(NULL) == NULL);
    /* The thread keeps its binding after a refused release. */
    ASSERT_OK(fleet_stream_current(d0, &out));
    ASSERT_TRUE(out == s0);

    fleet_event *e = NULL;
    BAD(fleet_event_create(NULL, &e), FLEET_ERR_NULL_POINTER);
    BAD(fleet_event_create(d0, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_event_record(NULL, s0), FLEET_ERR_NULL_POINTER);
    BAD(fleet_event_record(e0, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_event_record(e0, s1), FLEET_ERR_INVALID_DEVICE); /* stream of another device */
    BAD(fleet_stream_wait_event(NULL, e0), FLEET_ERR_NULL_POINTER);
    BAD(fleet_stream_wait_event(s0, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_event_query(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_event_synchronize(NULL), FLEET_ERR_NULL_POINTER);
    ASSERT_OK(fleet_event_destroy(NULL)); /* documented: ignored */
    ASSERT_OK(fleet_event_query(e0));     /* never recorded: complete */
    ASSERT_OK(fleet_event_destroy(e0));
    assert_texts_named();
}

TEST(memory)
{
    setup();
    fleet_stream *s0, *s1;
    ASSERT_OK(fleet_stream_current(d0, &s0));
    ASSERT_OK(fleet_stream_current(d1, &s1));
    fleet_allocation live, copy, zero, out;
    ASSERT_OK(fleet_memory_alloc(s0, 1000, &live));
    memset(&zero, 0, sizeof zero);
    fleet_memory_stats st;
    snapshot();
    memset(&out, 0x5a, sizeof out);
    BAD(fleet_memory_alloc(s0, 0, &out), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_TRUE(out.ptr == NULL && out.size == 0); /* zeroed on failure */
    BAD(fleet_memory_alloc(NULL, 64, &out), FLEET_ERR_NULL_POINTER);
    BAD(fleet_memory_alloc(s0, 64, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_memory_free(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_memory_free(&zero), FLEET_ERR_INVALID_ARGUMENT);
    BAD(fleet_memory_record_stream(NULL, s0), FLEET_ERR_NULL_POINTER);
    BAD(fleet_memory_record_stream(&live, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_memory_record_stream(&live, s1), FLEET_ERR_INVALID_DEVICE);
    BAD(fleet_memory_get_stats(NULL, &st), FLEET_ERR_NULL_POINTER);
    BAD(fleet_memory_get_stats(d0, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_memory_reset_peak(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_memory_empty_cache(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_memory_set_limit(NULL, 1 << 20), FLEET_ERR_NULL_POINTER);
    BAD(fleet_memory_inject_failure(NULL, 1), FLEET_ERR_NULL_POINTER);
    /* Double free through a copy of the handle: stale, and harmless. */
    copy = live;
    ASSERT_OK(fleet_memory_free(&live));
    ASSERT_TRUE(live.ptr == NULL);
    snapshot();
    BAD(fleet_memory_free(&copy), FLEET_ERR_STALE_HANDLE);
    fleet_allocation again;
    ASSERT_OK(fleet_memory_alloc(s0, 1000, &again)); /* likely the same block */
    snapshot();
    BAD(fleet_memory_free(&copy), FLEET_ERR_STALE_HANDLE);
    ASSERT_OK(fleet_memory_free(&again));
    assert_texts_named();
}

TEST(tensors)
{
    setup();
    fleet_tensor *t = NULL, *c = filled(d0, FLEET_DTYPE_F32, 2, M, N);
    fleet_stream *s1;
    ASSERT_OK(fleet_stream_current(d1, &s1));
    int64_t shape[2] = {M, N}, neg[2] = {4, -1}, huge[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    float host[64];
    size_t nb = fleet_tensor_nbytes(c);
    ASSERT_EQ(nb, sizeof(float) * M * N);
    snapshot();
    BAD(fleet_tensor_create(NULL, FLEET_DTYPE_F32, 2, shape, &t), FLEET_ERR_NULL_POINTER);
    BAD(fleet_tensor_create(d0, FLEET_DTYPE_F32, 2, shape, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_tensor_create(d0, FLEET_DTYPE_F32, 2, NULL, &t), FLEET_ERR_NULL_POINTER);
    BAD(fleet_tensor_create(d0, FLEET_DTYPE_F32, -1, shape, &t), FLEET_ERR_INVALID_ARGUMENT);
    BAD(fleet_tensor_create(d0, FLEET_DTYPE_F32, 9, nine, &t), FLEET_ERR_INVALID_ARGUMENT);
    BAD(fleet_tensor_create(d0, FLEET_DTYPE_F32, 2, neg, &t), FLEET_ERR_INVALID_ARGUMENT);
    BAD(fleet_tensor_create(d0, FLEET_DTYPE_F32, 2, huge, &t), FLEET_ERR_INVALID_ARGUMENT);
    BAD(fleet_tensor_create(d0, (fleet_dtype)99, 2, shape, &t), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_TRUE(t == NULL);
    BAD(fleet_tensor_retain(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_tensor_release(NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_tensor_copy_from_host(NULL, host, nb), FLEET_ERR_NULL_POINTER);
    BAD(fleet_tensor_copy_from_host(c, NULL, nb), FLEET_ERR_NULL_POINTER);
    memset(host, 0, sizeof host);
    BAD(fleet_tensor_copy_from_host(c, host, nb - 4), FLEET_ERR_INVALID_ARGUMENT);
    BAD(fleet_tensor_copy_from_host(c, host, nb + 4), FLEET_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < 64; i++)
        host[i] = -7.0f;
    BAD(fleet_tensor_copy_to_host(NULL, host, nb), FLEET_ERR_NULL_POINTER);
    BAD(fleet_tensor_copy_to_host(c, NULL, nb), FLEET_ERR_NULL_POINTER);
    BAD(fleet_tensor_copy_to_host(c, host, nb - 4), FLEET_ERR_INVALID_ARGUMENT);
    BAD(fleet_tensor_copy_to_host(c, host, 0), FLEET_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < 64; i++)
        ASSERT_TRUE(host[i] == -7.0f);
    BAD(fleet_tensor_record_stream(NULL, s1), FLEET_ERR_NULL_POINTER);
    BAD(fleet_tensor_record_stream(c, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_tensor_record_stream(c, s1), FLEET_ERR_INVALID_DEVICE);
    assert_sentinel(c);
    /* Accessors. */
    ASSERT_TRUE(fleet_tensor_device(NULL) == NULL && fleet_tensor_data(NULL) == NULL);
    ASSERT_TRUE(fleet_tensor_stream(NULL) == NULL);
    ASSERT_EQ(fleet_tensor_ndim(NULL), 0);
    ASSERT_EQ(fleet_tensor_numel(NULL), 0);
    ASSERT_EQ(fleet_tensor_nbytes(NULL), 0);
    ASSERT_EQ(fleet_tensor_is_contiguous(NULL), 0);
    ASSERT_EQ(fleet_tensor_dim(c, 2), -1);
    ASSERT_EQ(fleet_tensor_dim(c, -3), -1);
    ASSERT_EQ(fleet_tensor_dim(c, -1), N);
    ASSERT_EQ(fleet_tensor_stride(c, 2), -1);
    ASSERT_EQ(fleet_tensor_stride(c, 0), N);
    ASSERT_EQ(fleet_dtype_size((fleet_dtype)99), 0);
    ASSERT_STR_CONTAINS(fleet_dtype_name((fleet_dtype)99), "unknown");
    /* f16 storage works on cpu. */
    fleet_tensor *h = NULL;
    ASSERT_OK(fleet_tensor_create(d0, FLEET_DTYPE_F16, 2, shape, &h));
    ASSERT_EQ(fleet_tensor_nbytes(h), 2 * M * N);
    ASSERT_OK(fleet_tensor_release(h));
    ASSERT_OK(fleet_tensor_release(c));
    assert_texts_named();
}

TEST(ops)
{
    setup();
    const fleet_dtype f32 = FLEET_DTYPE_F32, f16 = FLEET_DTYPE_F16;
    fleet_tensor *a = filled(d0, f32, 2, M, K), *b = filled(d0, f32, 2, K, N);
    fleet_tensor *c = filled(d0, f32, 2, M, N), *c44 = filled(d0, f32, 2, M, M);
    fleet_tensor *b45 = filled(d0, f32, 2, M, N), *bias4 = filled(d0, f32, 1, M, 1);
    fleet_tensor *v3 = filled(d0, f32, 1, K, 1), *sq = filled(d0, f32, 2, M, M);
    fleet_tensor *b1 = filled(d1, f32, 2, K, N), *c1 = filled(d1, f32, 2, M, N);
    fleet_tensor *a16 = filled(d0, f16, 2, M, K), *b16 = filled(d0, f16, 2, K, N);
    fleet_tensor *c16 = filled(d0, f16, 2, M, N), *e16 = filled(d0, f16, 2, M, N);
    snapshot();
    BAD(fleet_matmul(NULL, b, c), FLEET_ERR_NULL_POINTER);
    BAD(fleet_matmul(a, NULL, c), FLEET_ERR_NULL_POINTER);
    BAD(fleet_matmul(a, b, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_matmul(a, b45, c), FLEET_ERR_SHAPE_MISMATCH);  /* inner 3 vs 4 */
    ASSERT_STR_CONTAINS(fleet_last_error(), "4x3");           /* the shapes are named */
    BAD(fleet_matmul(a, b, c44), FLEET_ERR_SHAPE_MISMATCH);  /* out 4x4, not 4x5 */
    BAD(fleet_matmul(v3, b, c), FLEET_ERR_SHAPE_MISMATCH);   /* 1-D a */
    BAD(fleet_matmul(sq, sq, sq), FLEET_ERR_INVALID_ARGUMENT); /* out aliases a and b */
    BAD(fleet_matmul(a, b1, c), FLEET_ERR_INVALID_DEVICE);
    BAD(fleet_matmul(a, b, c1), FLEET_ERR_INVALID_DEVICE);
    BAD(fleet_matmul(a, b16, c), FLEET_ERR_DTYPE_MISMATCH);
    fleet_status st16 = fleet_matmul(a16, b16, c16);
    ASSERT_TRUE(st16 == FLEET_ERR_UNSUPPORTED || st16 == FLEET_ERR_DTYPE_MISMATCH);
    BAD(fleet_matmul(a16, b16, c16), st16);

    BAD(fleet_add(NULL, c, c), FLEET_ERR_NULL_POINTER);
    BAD(fleet_add(c, NULL, c), FLEET_ERR_NULL_POINTER);
    BAD(fleet_add(c, c, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_add(c, a, c), FLEET_ERR_SHAPE_MISMATCH);     /* 4x3 onto 4x5 */
    BAD(fleet_add(c, bias4, c), FLEET_ERR_SHAPE_MISMATCH); /* bias of 4, rows of 5 */
    BAD(fleet_add(c, b45, c44), FLEET_ERR_SHAPE_MISMATCH); /* out shape */
    BAD(fleet_add(c, c1, c), FLEET_ERR_INVALID_DEVICE);
    BAD(fleet_add(c, c16, c), FLEET_ERR_DTYPE_MISMATCH);
    st16 = fleet_add(c16, c16, e16);
    ASSERT_TRUE(st16 == FLEET_ERR_UNSUPPORTED || st16 == FLEET_ERR_DTYPE_MISMATCH);

    BAD(fleet_relu(NULL, c), FLEET_ERR_NULL_POINTER);
    BAD(fleet_relu(c, NULL), FLEET_ERR_NULL_POINTER);
    BAD(fleet_relu(c, c44), FLEET_ERR_SHAPE_MISMATCH);
    BAD(fleet_relu(c, c1), FLEET_ERR_INVALID_DEVICE);
    BAD(fleet_relu(c, c16), FLEET_ERR_DTYPE_MISMATCH);
    st16 = fleet_relu(c16, e16);
    ASSERT_TRUE(st16 == FLEET_ERR_UNSUPPORTED || st16 == FLEET_ERR_DTYPE_MISMATCH);

    /* In place means out is the input itself: its transpose (the same
     * memory in another layout) and a shifted slice are refused, each
     * named for what it is. */
    fleet_tensor *sqt = NULL, *rows_a = NULL, *rows_b = NULL;
    ASSERT_OK(fleet_tensor_transpose(sq, 0, 1, &sqt));
    BAD(fleet_copy(sqt, sq), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(fleet_last_error(), "out is x's memory in another layout");
    BAD(fleet_softmax(sqt, -1, sq), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(fleet_last_error(), "another layout");
    ASSERT_OK(fleet_tensor_slice(sq, 0, 0, M - 1, &rows_a));
    ASSERT_OK(fleet_tensor_slice(sq, 0, 1, M, &rows_b));
    BAD(fleet_relu(rows_a, rows_b), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(fleet_last_error(), "out partly overlaps x");
    TEST_RELEASE(sqt, rows_a, rows_b);

    /* Nothing was written, and no stream carries an error. */
    fleet_tensor *all[] = {a, b, c, c44, b45, bias4, v3, sq, b1, c1, a16, b16, c16, e16};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        assert_sentinel(all[i]);
    ASSERT_OK(fleet_device_synchronize(d0));
    ASSERT_OK(fleet_device_synchronize(d1));
    /* The same tensors still work for a valid call. */
    ASSERT_OK(fleet_matmul(a, b, c));
    ASSERT_OK(fleet_relu(c, c));
    float got[M * N];
    test_tensor_read(c, got);
    ASSERT_TRUE(got[0] > 0);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ASSERT_OK(fleet_tensor_release(all[i]));
    assert_texts_named();
}

/* A released tensor's or event's handle is FLEET_ERR_STALE_HANDLE wherever
 * it goes — ops, copies, views, retain, a second release, a destroy — never
 * a read of freed memory (ASan checks), also once its slot holds a new
 * tensor; accessors read it as no tensor. */
TEST(stale_handles)
{
    setup();
    fleet_tensor *x = filled(d0, FLEET_DTYPE_F32, 2, M, N),
                  *y = filled(d0, FLEET_DTYPE_F32, 2, M, N);
    fleet_tensor *gone = filled(d0, FLEET_DTYPE_F32, 2, M, N), *view = NULL;
    ASSERT_OK(fleet_tensor_release(gone));
    snapshot();
    BAD(fleet_tensor_release(gone), FLEET_ERR_STALE_HANDLE);
    ASSERT_STR_CONTAINS(fleet_last_error(), "stale tensor handle");
    BAD(fleet_tensor_retain(gone), FLEET_ERR_STALE_HANDLE);
    BAD(fleet_relu(gone, y), FLEET_ERR_STALE_HANDLE);
    ASSERT_STR_CONTAINS(fleet_last_error(), "fleet_relu: x is a stale tensor handle");
    BAD(fleet_add(x, gone, y), FLEET_ERR_STALE_HANDLE);
    BAD(fleet_matmul(x, gone, y), FLEET_ERR_STALE_HANDLE);
    BAD(fleet_copy(x, gone), FLEET_ERR_STALE_HANDLE);
    BAD(fleet_tensor_copy_to_host(gone, sentinel, sizeof(float) * M * N), FLEET_ERR_STALE_HANDLE);
    BAD(fleet_tensor_transpose(gone, 0, 1, &view), FLEET_ERR_STALE_HANDLE);
    ASSERT_TRUE(view == NULL);
    ASSERT_EQ(fleet_tensor_dim(gone, 0), -1);
    ASSERT_EQ(fleet_tensor_numel(gone), 0);
    ASSERT_TRUE(fleet_tensor_data(gone) == NULL);
    /* A view keeps its storage: the base can go first. */
    ASSERT_OK(fleet_tensor_transpose(x, 0, 1, &view));
    ASSERT_OK(fleet_tensor_release(x));
    BAD(fleet_copy(x, y), FLEET_ERR_STALE_HANDLE);
    fleet_tensor *back = filled(d0, FLEET_DTYPE_F32, 2, N, M); /* may reuse x's slot */
    snapshot();
    BAD(fleet_relu(x, y), FLEET_ERR_STALE_HANDLE);
    ASSERT_OK(fleet_copy(view, back));
    assert_sentinel(y);
    /* Retained twice: the third release is stale. */
    ASSERT_OK(fleet_tensor_retain(back));
    ASSERT_OK(fleet_tensor_release(back));
    ASSERT_OK(fleet_tensor_release(back));
    ASSERT_STATUS(fleet_tensor_release(back), FLEET_ERR_STALE_HANDLE);
    TEST_RELEASE(view, y);

    fleet_event *e = NULL;
    fleet_stream *s = NULL;
    ASSERT_OK(fleet_event_create(d0, &e));
    ASSERT_OK(fleet_stream_current(d0, &s));
    ASSERT_OK(fleet_event_destroy(e));
    snapshot();
    BAD(fleet_event_destroy(e), FLEET_ERR_STALE_HANDLE);
    BAD(fleet_event_record(e, s), FLEET_ERR_STALE_HANDLE);
    BAD(fleet_stream_wait_event(s, e), FLEET_ERR_STALE_HANDLE);
    BAD(fleet_event_query(e), FLEET_ERR_STALE_HANDLE);
    BAD(fleet_event_synchronize(e), FLEET_ERR_STALE_HANDLE);
    assert_texts_named();
}

TEST(status_text)
{
#define CHECK_STATUS_(name, value, text)                                                  \
    ASSERT_EQ(strcmp(fleet_status_str(FLEET_##name), text), 0);                           \
    ASSERT_EQ(strcmp(fleet_status_name(FLEET_##name), "FLEET_" #name), 0);
    FLEET_STATUS_MAP(CHECK_STATUS_)
#undef CHECK_STATUS_
    fleet_status unknown[] = {(fleet_status)1, (fleet_status)-20, (fleet_status)-999,
                              (fleet_status)12345};
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(strcmp(fleet_status_str(unknown[i]), "unknown status"), 0);
        ASSERT_TRUE(fleet_status_name(unknown[i]) != NULL && fleet_status_name(unknown[i])[0]);
    }
}

int main(int argc, char **argv)
{
    setenv("FLEET_CPU_DEVICES", "2", 1);
    return test_main(argc, argv);
}
