/* onnx/import.h — the ONNX importer's state, shared by its parts: the
 * loader (onnx/import.c: the file, the value table, inputs, outputs,
 * initializers, the node walk), the host evaluator that folds what is known
 * at load (onnx/fold.c) and the operator translators (onnx/onnx_ops.c).
 *
 * Every ONNX value name maps to an `ival`: a constant known at load (host
 * data, its int64 elements possibly "the batch size" — what Shape gives for
 * a symbolic dimension), a value of the fleet model being built, or
 * poisoned (made by a node fleet cannot run: everything reading it is
 * skipped, and the load fails listing every such node). */
#ifndef FLEET_ONNX_IMPORT_H
#define FLEET_ONNX_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet/model.h"
#include "onnx/onnx_proto.h"

typedef enum fleet__iv_kind {
    FLEET__IV_CONST,  /* c holds the data; v is its model value once one is needed */
    FLEET__IV_GRAPH,  /* v is a value of the model                                  */
    FLEET__IV_POISON, /* from a node fleet cannot run                               */
} fleet__iv_kind;

/* Constants larger than this are not folded (a graph op computes them). */
#define FLEET__FOLD_MAX_ELEMS ((int64_t)1 << 22)

typedef struct fleet__ival {
    fleet__onnx_str name;
    fleet__iv_kind kind;
    fleet_dtype dtype;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS]; /* FLEET_DIM_BATCH in a graph value's    */
    /* CONST: */
    int64_t numel;
    void *data;     /* numel elements of dtype                              */
    bool owned;     /* data is the importer's (else the file's mapping)     */
    uint8_t *sym;   /* NULL, or per element: 1 where it is the batch size   */
    bool initializer; /* named by the file: a weight of that name if needed */
    fleet_value v;  /* GRAPH, or a materialised CONST; else FLEET_NO_VALUE   */
} fleet__ival;

typedef struct fleet__importer {
    const fleet__onnx_model *om;
    fleet_model *m;
    int64_t opset;            /* of the standard domain                     */
    fleet__ival *vals;
    int n_vals, cap_vals;
    int *slots;               /* open addressing by name: index + 1, 0 empty */
    size_t n_slots;
    /* The nodes fleet cannot run: the list (as much as fits), and how much
     * of it fits the one error's text. */
    char unsupported[2048];
    size_t unsupported_len, error_len;
    int n_unsupported, n_listed, n_in_error;
    int n_folded;             /* nodes computed at load                      */
    int n_fused;              /* nodes fused into an earlier one              */
    int node;                 /* the node being walked (its index)            */
    /* Per node: the model value of its output 0 when an earlier node
     * computed it (a MatMul that took its bias Add); else FLEET_NO_VALUE. */
    fleet_value *done_by;
    /* Per node: for the last MatMul of an attention chain (onnx_ops.c), the
     * index + 1 of the chain's first MatMul, whose chain it computes; else 0. */
    int *attention_from;
    /* How many nodes (and graph outputs) read each name, and the last node
     * that does: counted before the walk, for the fusions. */
    struct fleet__imp_readers *readers;
    size_t n_reader_slots;
} fleet__importer;

/* ---- the value table (import.c) ----------------------------------------------- */

/* The value called name, or NULL (never defined). */
fleet__ival *fleet__imp_find(fleet__importer *im, fleet__onnx_str name);
/* A new entry for name (a node's output: defined once). */
fleet_status fleet__imp_define(fleet__importer *im, fleet__onnx_str name, fleet__ival **out);

/* The node's input k: NULL when absent (beyond its inputs, or an empty
 * name). A name never defined is FLEET_ERR_INVALID_MODEL. */
fleet_status fleet__imp_input(fleet__importer *im, const fleet__onnx_node *n, int k,
                              fleet__ival **out);
/* Output k a graph value v (its dtype and shape read from the model). */
fleet_status fleet__imp_out_graph(fleet__importer *im, const fleet__onnx_node *n, int k,
                                  fleet_value v);
/* Output k a constant: data (numel elements of dtype, owned from now on,
 * freed on failure too) and sym (NULL or owned likewise). */
fleet_status fleet__imp_out_const(fleet__importer *im, const fleet__onnx_node *n, int k,
                                  fleet_dtype dtype, int ndim, const int64_t *shape, void *data,
                                  uint8_t *sym);
/* The model value of iv: a constant becomes a model constant (an
 * initializer a weight of its name, its data borrowed from the file) the
 * first time. FLEET_ERR_UNSUPPORTED for a constant holding the batch size. */
fleet_status fleet__imp_value(fleet__importer *im, fleet__ival *iv, fleet_value *out);

/* The readers of name (nodes reading it, plus one if it is a graph output),
 * and in *last the index of the last node reading it (-1: none). */
int fleet__imp_readers(const fleet__importer *im, fleet__onnx_str name, int *last);

/* ---- attributes ------------------------------------------------------------------ */

const fleet__onnx_attr *fleet__imp_attr(const fleet__onnx_node *n, const char *name);
int64_t fleet__imp_attr_int(const fleet__onnx_node *n, const char *name, int64_t dflt);
float fleet__imp_attr_float(const fleet__onnx_node *n, const char *name, float dflt);
/* Whether the string attribute equals s (dflt when absent). */
bool fleet__imp_attr_str_is(const fleet__onnx_node *n, const char *name, const char *s,
                            bool dflt);
/* An ints attribute: its count (0 when absent) and elements (never NULL). */
int fleet__imp_attr_ints(const fleet__onnx_node *n, const char *name, const int64_t **ints);

/* FLEET_ERR_UNSUPPORTED with "what" about node n, for the list. */
fleet_status fleet__imp_unsupported(const fleet__onnx_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- constants (fold.c) ------------------------------------------------------------ */

/* A constant's elements as int64 (integers, bools; floats truncated) into
 * out[max]; sym_out (NULL: refuse) gets the batch flags. */
fleet_status fleet__imp_ints(const fleet__onnx_node *n, const fleet__ival *iv, int64_t *out,
                             uint8_t *sym_out, int max, int *count);
/* Element i of a constant as double (integers converted). */
double fleet__imp_elem_f64(const fleet__ival *iv, int64_t i);

/* If every present input of n is a constant and the op is one the host
 * evaluator knows (or it is Shape, which needs only its input's shape),
 * compute n's outputs as constants: *done then true. */
fleet_status fleet__imp_fold(fleet__importer *im, const fleet__onnx_node *n, bool *done);

/* ---- the operators (onnx_ops.c) ------------------------------------------------------- */

/* The shape after Squeeze (axes; none: every dimension of size 1) or
 * Unsqueeze (axes of the result) of a shape. */
fleet_status fleet__imp_squeeze_shape(const fleet__onnx_node *n, int ndim, const int64_t *in,
                                      const int64_t *axes, int n_axes, bool unsqueeze,
                                      int *out_ndim, int64_t *out);

typedef fleet_status (*fleet__onnx_translate)(fleet__importer *im, const fleet__onnx_node *n);
/* The translator of op_type at the model's opset, or NULL (unsupported). */
fleet__onnx_translate fleet__onnx_translator(fleet__onnx_str op_type, int64_t opset);

#endif /* FLEET_ONNX_IMPORT_H */
