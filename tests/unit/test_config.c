/* test_config.c — config parsing against the param tables, the registry,
 * nested configs and weight binding errors. */
#include "test_util.h"

static void registry_lists_and_finds(void **state) {
    (void)state;
    assert_true(attn_mech_count() >= 13);
    for (size_t i = 0; i < attn_mech_count(); i++) {
        const attn_mech_info *m = attn_mech_at(i);
        assert_non_null(m->name);
        assert_ptr_equal(attn_mech_find(m->name), m);
        for (const char *const *a = m->aliases; a && *a; a++) assert_ptr_equal(attn_mech_find(*a), m);
        for (const attn_param *p = m->params; p && p->key; p++) assert_non_null(p->doc);
    }
    assert_null(attn_mech_at(attn_mech_count()));
    assert_null(attn_mech_find("no-such"));
    assert_string_equal(attn_mech_find("causal-linear")->name, "causal_linear");
    assert_string_equal(attn_mech_find("improved-clustered")->name, "improved_clustered");
    assert_string_equal(attn_mech_find("causal-improved-clustered")->name, "improved_clustered_causal");
    assert_string_equal(attn_mech_find("exact-topk")->name, "exact_topk");
    assert_string_equal(attn_mech_find("conditional-full")->name, "conditional_full");
    assert_string_equal(attn_mech_find("aft-full")->name, "aft_full");
}

static void config_errors_name_the_key(void **state) {
    (void)state;
    attn_error e = {0};
    assert_int_equal(tu_model_status("nope", NULL, NULL, &e), ATTN_E_NOTFOUND);
    assert_int_equal(tu_model_status("full", "{\"softmax_tmp\": 1}", NULL, &e), ATTN_E_CONFIG);
    assert_non_null(strstr(e.msg, "softmax_tmp"));
    assert_int_equal(tu_model_status("full", "{\"softmax_temp\": \"hot\"}", NULL, &e), ATTN_E_CONFIG);
    assert_non_null(strstr(e.msg, "softmax_temp"));
    assert_int_equal(tu_model_status("full", "{\"attention_dropout\": 2}", NULL, &e), ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("full", "[1]", NULL, &e), ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("full", "{bad json", NULL, &e), ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("full", "{\"a\":1,\"a\":2}", NULL, &e), ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("local", "{}", NULL, &e), ATTN_E_CONFIG); /* local_context is required */
    assert_non_null(strstr(e.msg, "local_context"));
    assert_int_equal(tu_model_status("local", "{\"local_context\": 0}", NULL, &e), ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("local", "{\"local_context\": 2.5}", NULL, &e), ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("local", "{\"local_context\": 4.0}", NULL, &e), ATTN_OK); /* int(4.0) */
    assert_int_equal(tu_model_status("linear", "{}", NULL, &e), ATTN_E_CONFIG); /* query_dimensions required */
    assert_int_equal(tu_model_status("linear", "{\"query_dimensions\": 4, \"feature_map\": \"nope\"}", NULL, &e), ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("linear", "{\"query_dimensions\": 4, \"feature_map\": {\"type\": \"favor\", \"x\": 1}}", NULL, &e),
                     ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("exact_topk", "{\"topk\": true}", NULL, &e), ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("full", "{\"softmax_temp\": null}", NULL, &e), ATTN_OK);
}

static void nested_configs(void **state) {
    (void)state;
    attn_error e = {0};
    assert_int_equal(tu_model_status("conditional_full", "{\"other_attention\": {\"type\": \"linear\", \"query_dimensions\": 4}}", NULL, &e),
                     ATTN_OK);
    assert_int_equal(tu_model_status("conditional_full", "{\"other_attention\": \"full\"}", NULL, &e), ATTN_OK);
    assert_int_equal(tu_model_status("conditional_full", "{}", NULL, &e), ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("conditional_full", "{\"other_attention\": {\"type\": \"nope\"}}", NULL, &e), ATTN_E_CONFIG);
    assert_int_equal(tu_model_status("conditional_full", "{\"other_attention\": {\"type\": \"attention_layer\"}}", NULL, &e),
                     ATTN_E_CONFIG); /* not an inner attention */
    assert_int_equal(tu_model_status("conditional_full", "{\"other_attention\": {\"type\": \"local\"}}", NULL, &e), ATTN_E_CONFIG);
    assert_non_null(strstr(e.msg, "local_context"));
}

static void weights_missing_extra_misshaped(void **state) {
    (void)state;
    attn_error e = {0};
    attn_model *m = NULL;
    const char *cfg = "{\"max_sequence_length\": 4, \"aft_parameterization\": 3}";
    assert_int_equal(attn_model_new("aft_full", cfg, NULL, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "'u'"));
    attn_tensor_set *w = attn_tensor_set_new();
    uint64_t seed = 3;
    int64_t ok[2] = {4, 3}, bad[2] = {3, 4};
    tu_add(w, "u", tu_randn(&seed, 2, ok));
    tu_add(w, "v", tu_randn(&seed, 2, bad));
    assert_int_equal(attn_model_new("aft_full", cfg, w, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "(3,4)"));
    assert_non_null(strstr(e.msg, "(4,3)"));
    attn_tensor_set_free(w);
    w = attn_tensor_set_new();
    tu_add(w, "u", tu_randn(&seed, 2, ok));
    tu_add(w, "v", tu_randn(&seed, 2, ok));
    tu_add(w, "extra.weight", tu_randn(&seed, 2, ok));
    assert_int_equal(attn_model_new("aft_full", cfg, w, &m, &e), ATTN_E_WEIGHTS);
    assert_non_null(strstr(e.msg, "extra.weight"));
    attn_tensor_set_free(w);
    /* weights for a parameter-free type are extra too */
    w = attn_tensor_set_new();
    tu_add(w, "u", tu_randn(&seed, 2, ok));
    assert_int_equal(attn_model_new("full", NULL, w, &m, &e), ATTN_E_WEIGHTS);
    attn_tensor_set_free(w);
}

static void model_metadata(void **state) {
    (void)state;
    /* A random feature map's omega is (query_dimensions, .): E is fixed. */
    attn_model *m = tu_model("linear", "{\"query_dimensions\": 6, \"feature_map\": \"favor\"}");
    assert_string_equal(attn_model_mech(m)->name, "linear");
    assert_int_equal(attn_model_num_inputs(m), 6);
    const attn_io_spec *q = attn_model_input(m, 0);
    assert_string_equal(q->name, "queries");
    assert_int_equal(q->rank, 4);
    assert_int_equal(q->shape[0], -1);
    assert_int_equal(q->shape[3], 6);
    assert_false(attn_model_input(m, 3)->required);
    assert_null(attn_model_input(m, 6));
    assert_string_equal(attn_model_output(m)->name, "output");
    assert_non_null(strstr(attn_model_config_json(m), "query_dimensions"));
    attn_model_free(m);
    /* The default elu map ignores query_dimensions, as the reference does. */
    m = tu_model("linear", "{\"query_dimensions\": 6}");
    assert_int_equal(attn_model_input(m, 0)->shape[3], -1);
    attn_model_free(m);
}

/* is_inner is what attn__model_new_nested checks: a nested attention
 * (conditional_full's other_attention) is refused exactly when the type is
 * not marked inner. */
static void is_inner_decides_nesting(void **state) {
    (void)state;
    size_t inner = 0;
    for (size_t i = 0; i < attn_mech_count(); i++) {
        const attn_mech_info *m = attn_mech_at(i);
        char cfg[256];
        snprintf(cfg, sizeof cfg, "{\"other_attention\": {\"type\": \"%s\"}}", m->name);
        attn_error e = {0};
        attn_status st = tu_model_status("conditional_full", cfg, NULL, &e);
        int refused = st == ATTN_E_CONFIG && strstr(e.msg, "cannot be used as an inner attention") != NULL;
        assert_int_equal(refused, !m->is_inner);
        inner += m->is_inner != 0;
    }
    assert_true(inner > 0 && inner < attn_mech_count());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry_lists_and_finds), cmocka_unit_test(config_errors_name_the_key),
        cmocka_unit_test(nested_configs),           cmocka_unit_test(weights_missing_extra_misshaped),
        cmocka_unit_test(model_metadata),           cmocka_unit_test(is_inner_decides_nesting),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
