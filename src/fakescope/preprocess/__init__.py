"""Video decoding, face detection, alignment and the resumable video -> faces pipeline."""
