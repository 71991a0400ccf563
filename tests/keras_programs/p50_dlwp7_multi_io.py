"""Source: github.com/fchollet/deep-learning-with-python-notebooks, chapter07_working-with-keras.ipynb
(Deep Learning with Python, 3rd edition, chapter 7), sections "Multi-input, multi-output models", "Training a multi-input, multi-output model" (losses and metrics as lists and as dicts, fit / evaluate / predict on lists and dicts) and "Feature extraction with a Functional model" (layer.input / layer.output, a new model with a third output); the plot_model cells (pydot/graphviz) are left out, and the synthetic data cell runs first.

Imports changed: `import keras` -> `import convscope as keras`, `from keras import layers` ->
`from convscope import layers`; the notebook's `os.environ["KERAS_BACKEND"] = "jax"` cell is left out (the
backend choice is no API use).
Trimmed for run time: 320 synthetic samples instead of 1280.
"""
import convscope as keras
from convscope import layers
import numpy as np

vocabulary_size = 10000
num_tags = 100
num_departments = 4

num_samples = 320  # trimmed for run time (1280 in the source)

title_data = np.random.randint(0, 2, size=(num_samples, vocabulary_size))
text_body_data = np.random.randint(0, 2, size=(num_samples, vocabulary_size))
tags_data = np.random.randint(0, 2, size=(num_samples, num_tags))

priority_data = np.random.random(size=(num_samples, 1))
department_data = np.random.randint(0, 2, size=(num_samples, num_departments))

title = keras.Input(shape=(vocabulary_size,), name="title")
text_body = keras.Input(shape=(vocabulary_size,), name="text_body")
tags = keras.Input(shape=(num_tags,), name="tags")

features = layers.Concatenate()([title, text_body, tags])
features = layers.Dense(64, activation="relu", name="dense_features")(features)

priority = layers.Dense(1, activation="sigmoid", name="priority")(features)
department = layers.Dense(
    num_departments, activation="softmax", name="department"
)(features)

model = keras.Model(
    inputs=[title, text_body, tags],
    outputs=[priority, department],
)

model.compile(
    optimizer="adam",
    loss=["mean_squared_error", "categorical_crossentropy"],
    metrics=[["mean_absolute_error"], ["accuracy"]],
)
model.fit(
    [title_data, text_body_data, tags_data],
    [priority_data, department_data],
    epochs=1,
)
model.evaluate(
    [title_data, text_body_data, tags_data], [priority_data, department_data]
)
priority_preds, department_preds = model.predict(
    [title_data, text_body_data, tags_data]
)

model.compile(
    optimizer="adam",
    loss={
        "priority": "mean_squared_error",
        "department": "categorical_crossentropy",
    },
    metrics={
        "priority": ["mean_absolute_error"],
        "department": ["accuracy"],
    },
)
model.fit(
    {"title": title_data, "text_body": text_body_data, "tags": tags_data},
    {"priority": priority_data, "department": department_data},
    epochs=1,
)
model.evaluate(
    {"title": title_data, "text_body": text_body_data, "tags": tags_data},
    {"priority": priority_data, "department": department_data},
)
priority_preds, department_preds = model.predict(
    {"title": title_data, "text_body": text_body_data, "tags": tags_data}
)

model.layers

model.layers[3].input

model.layers[3].output

features = model.layers[4].output
difficulty = layers.Dense(3, activation="softmax", name="difficulty")(features)

new_model = keras.Model(
    inputs=[title, text_body, tags], outputs=[priority, department, difficulty]
)
