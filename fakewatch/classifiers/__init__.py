"""Classifiers: batches of prepared images in, calibrated ``p_fake`` out.

    base           the Classifier and Pending interfaces, calibration, crops to one score, a fused network's views
    loading        a registry version to a Classifier, by its engine and the runtime setting
    lazy           a classifier that loads on first use
    pixel_hash     the deterministic stand-in (tests, smoke tests)
    onnx_runtime   runtime ``lite``: a version's ONNX export in ONNX Runtime, no TensorFlow
    keras_runtime  runtime ``keras``: the saved network in TensorFlow (imports TensorFlow)
    layers         every custom Keras layer a saved network needs (imports Keras)
    export         a Keras version to ONNX, checked against the network (imports TensorFlow)
    explain        where the classifier looked: the occlusion heatmap

Training builds networks from :mod:`~fakewatch.classifiers.layers` and publishes through
:mod:`~fakewatch.classifiers.export`; nothing here imports :mod:`fakewatch.training`.
"""
