"""Histogram gradient-boosted trees: the NumPy core behind BoostedTreesClassifier / Regressor.

Modules, in the order the algorithm uses them:

* ``binning``: quantile bin edges per feature and the uint8 bin ids (missing values get a bin);
* ``loss``: gradients, hessians and the starting bias of the logistic, softmax and squared losses;
* ``histogram``: per-node gradient / hessian / count histograms, and the subtraction trick;
* ``splitting``: the regularised best split of a node, and the row partition that applies it;
* ``grower``: level-by-level growth of one tree, with pre- and post-pruning;
* ``predictor``: trees as flat arrays; vectorised prediction, explanations, feature importances;
* ``gbdt``: ``GradientBoostedTrees``, which ties them together (fit / resume / predict / state);
* ``distributed``: boosting on MPI ranks that each hold a shard of the rows (bin edges agreed once,
  one histogram allreduce per tree level);
* ``graph_ops``: the engine ops that serve an exported ensemble (``BoostedTreesEnsemblePredict``) and
  the feature-column transform shared by training, predict and the serving graph.

numba kernels (``_numba_kernels``) are used for the hot loops when numba is installed; each has a
NumPy twin that gives the same numbers.
"""

from kestimator.estimators.boosted_trees.gbdt import GradientBoostedTrees
from kestimator.estimators.boosted_trees.predictor import Explanation, Tree, TreeEnsemble

__all__ = ["GradientBoostedTrees", "Explanation", "Tree", "TreeEnsemble"]
