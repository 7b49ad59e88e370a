import os

# Quiet TensorFlow's C++ start-up lines before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
