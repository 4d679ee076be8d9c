"""Reference numbers for LightCurveMetrics (Tests/PipelinesTests/LightCurveTests.swift).

Draws 28 seven-class probability vectors (seeded) and labels, and prints scikit-learn's
accuracy, macro-F1, ROC AUC of class 0 against the rest, binary accuracy of
(argmax == 0) against (label == 0) and log-loss, as Swift literals to paste into the test.
"""
import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

rng = np.random.default_rng(17)
n, k = 28, 7
truth = np.arange(n) % k
logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[truth] * (rng.uniform(size=(n, 1)) > 0.3)
p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
p = np.round(p, 6)
p /= p.sum(axis=1, keepdims=True)
pred = p.argmax(axis=1)
print("let probabilities: [[Double]] = [")
for row in p:
    print("    [" + ", ".join(repr(float(v)) for v in row) + "],")
print("]")
print("let truth = [" + ", ".join(str(int(t)) for t in truth) + "]")
print(f"accuracy {accuracy_score(truth, pred)!r}")
print(f"macro_f1 {f1_score(truth, pred, average='macro')!r}")
print(f"roc_auc_sn_ia {roc_auc_score(truth == 0, p[:, 0])!r}")
print(f"accuracy_sn_ia {accuracy_score(truth == 0, pred == 0)!r}")
print(f"log_loss {log_loss(truth, p, labels=list(range(k)))!r}")
