"""Evaluation: greedy or sampled answers scored with the training rules, reported per problem type."""
