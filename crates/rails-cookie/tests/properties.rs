//! Property tests: encode → decode is the identity for arbitrary sessions, in every preset and serializer.
