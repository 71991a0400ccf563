"""Pictures of a convnet's insides: filters, feature maps, gradients, training curves (needs ``convscope[viz]``).

    from convscope import viz
    fig = viz.filters_figure(model.get_layer("conv2d").kernel.value, title="conv2d")
    viz.save_figure(fig, "conv2d.png")

matplotlib is imported when the first picture is drawn, so importing this
package needs NumPy alone; drawing without matplotlib raises an ImportError
saying ``pip install 'convscope[viz]'``.
"""

from .figures import curves_figure, feature_maps_figure, filters_figure, save_figure

__all__ = ["curves_figure", "feature_maps_figure", "filters_figure", "save_figure"]
